package gcp

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// diskKind is gcp:compute/disk:Disk (rules §1) or, regional, gcp:compute/regionDisk:RegionDisk (rules §2):
// the same rules but for the location, the inputs that change in place, and the outputs.
type diskKind struct{ regional bool }

var (
	regionDiskProps = []string{
		"name", "region", "replicaZones", "project", "size", "type", "labels", "description", "snapshot", "sourceDisk",
		"physicalBlockSizeBytes", "asyncPrimaryDisk", "diskEncryptionKey", "sourceSnapshotEncryptionKey",
		"guestOsFeatures", "licenses", "interface",
	}
	regionDiskComputed = []string{"region", "project", "size", "physicalBlockSizeBytes", "name"}
	// regionDiskInPlace: every RegionDisk input but labels and size is ForceNew (rules §2).
	regionDiskInPlace = []string{"labels", "size", "interface"}
	// snapshotProjectRE finds the project of a snapshot given as a link.
	snapshotProjectRE = regexp.MustCompile(`projects/([^/]+)/global/snapshots/`)

	diskProps = []string{
		"name", "zone", "project", "size", "type", "labels", "description", "image", "snapshot", "sourceDisk",
		"physicalBlockSizeBytes", "resourcePolicies", "provisionedIops", "provisionedThroughput", "accessMode",
		"multiWriter", "enableConfidentialCompute", "guestOsFeatures", "licenses", "storagePool",
		"asyncPrimaryDisk", "diskEncryptionKey", "sourceImageEncryptionKey", "sourceSnapshotEncryptionKey", "interface",
	}
	// diskComputed are Optional+Computed: leaving them out of the program is never a change.
	diskComputed = []string{"zone", "project", "size", "physicalBlockSizeBytes", "resourcePolicies",
		"provisionedIops", "provisionedThroughput", "accessMode", "name"}
	// diskInPlace are the inputs that change without replacing the disk; every other input is ForceNew.
	diskInPlace = []string{"labels", "size", "provisionedIops", "provisionedThroughput", "accessMode", "interface"}
)

// rules returns the kind's type token, its inputs, its Optional+Computed inputs and those that change in place.
func (k diskKind) rules() (typ string, props, computed, inPlace []string) {
	if k.regional {
		return RegionDiskType, regionDiskProps, regionDiskComputed, regionDiskInPlace
	}
	return DiskType, diskProps, diskComputed, diskInPlace
}

// ints are the integer inputs: a string that parses as one is taken, any other string fails the Check
// as an RPC error (the bridge's conversion, before validation).
func (k diskKind) ints() []string {
	if k.regional {
		return []string{"size", "physicalBlockSizeBytes"}
	}
	return []string{"size", "physicalBlockSizeBytes", "provisionedIops", "provisionedThroughput"}
}

func (k diskKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	typ, props, _, _ := k.rules()
	inputs := clone(news)
	failures := unknownInputs(inputs, props, typ)
	if k.regional {
		// Required, exactly two items (rules §2); only the API checks that they are in the region.
		if zones, ok := inputs["replicaZones"].([]any); !isUnknown(inputs["replicaZones"]) && (!ok || len(zones) != 2) {
			failures = append(failures, failure("replicaZones", "replica_zones: attribute supports 2 item as maximum and minimum, config has %d declared", len(zones)))
		}
	}
	if v, ok := inputs["size"]; ok && v != nil && !isUnknown(v) {
		if _, isNum := num(v); !isNum {
			failures = append(failures, failure("size", "size must be a number, got %v", v))
		}
	}
	// The provider does not validate the name (rules §1); the API does, at create.
	defaults := autoname(inputs, olds, name, seed)
	if _, ok := inputs["type"]; !ok {
		inputs["type"] = "pd-standard" // the schema's default (rules §1)
		defaults = append(defaults, "type")
	}
	inputs[defaultsKey] = defaults
	return inputs, failures
}

func (k diskKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	_, props, computed, inPlace := k.rules()
	for _, key := range diffInputs(oldInputs, oldState, news, props, computed) {
		switch {
		case key == "replicaZones" && sameByName(oldInputs[key], news[key]):
			continue // stored as v1 zone URLs, compared by name (rules §2)
		case key == "snapshot" && sameByName(oldInputs[key], news[key]):
			continue // a self link, a relative link and a name of the same snapshot are the same (rules §0)
		case key == "type" && !isUnknown(news["type"]) && lastSegment(str(news["type"])) == lastSegment(str(oldState["type"])):
			continue // a diskTypes self link and the short name the API reads back are the same type
		case key == "size":
			// Growing resizes; shrinking replaces (ForceNewIfChange IsDiskShrinkage). A null or unknown
			// size on either side is not a shrink (rules §1).
			oldSize, okOld := num(oldState["size"])
			newSize, okNew := num(news["size"])
			if okOld && okNew && newSize < oldSize {
				replaces = append(replaces, key)
			}
		case key == "provisionedIops" && !isHyperdisk(news):
			replaces = append(replaces, key) // an IOPS change replaces unless the type is a hyperdisk (rules §1)
		case !slices.Contains(inPlace, key):
			replaces = append(replaces, key)
		}
		changed = append(changed, key)
	}
	return withLabelOutputs(changed, oldState, news), replaces
}

// sameByName reports whether two links, or two lists of links, name the same resources by their last
// segments.
func sameByName(a, b any) bool {
	if isUnknown(a) || isUnknown(b) {
		return false
	}
	as, aList := a.([]any)
	bs, bList := b.([]any)
	if !aList && !bList {
		sa, sb := str(a), str(b)
		return sa != "" && sb != "" && lastSegment(sa) == lastSegment(sb)
	}
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if lastSegment(str(as[i])) != lastSegment(str(bs[i])) {
			return false
		}
	}
	return true
}

func isHyperdisk(inputs map[string]any) bool {
	t := lastSegment(str(inputs["type"]))
	return len(t) >= 9 && t[:9] == "hyperdisk"
}

func (k diskKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, err := resolve(in["project"], p.project, "project")
	if err != nil {
		return "", nil, err
	}
	d := Disk{Name: str(in["name"]), Project: project}
	if k.regional {
		if d.Region, err = resolve(in["region"], p.region, "region"); err != nil {
			return "", nil, err
		}
		zones, _ := in["replicaZones"].([]any)
		for _, z := range zones {
			// Sent as zone links (rules §2), read back as v1 URLs.
			d.ReplicaZones = append(d.ReplicaZones, APIBase+fmt.Sprintf("projects/%s/zones/%s", project, lastSegment(str(z))))
		}
	} else if d.Zone, err = resolve(in["zone"], p.zone, "zone"); err != nil {
		return "", nil, err
	}
	if preview {
		state := withoutDefaults(in)
		state["project"] = project
		if k.regional {
			state["region"] = d.Region
		} else {
			state["zone"] = d.Zone
		}
		for _, key := range k.outputs() {
			state[key] = unknown{}
		}
		if _, ok := in["size"]; !ok {
			state["size"] = unknown{}
		}
		return "", state, nil
	}
	d.SizeGB, _ = num(in["size"])
	d.PhysicalBlockSizeBytes, _ = num(in["physicalBlockSizeBytes"])
	d.Type = lastSegment(str(in["type"])) // sent as projects/P/zones/Z/diskTypes/T, read back short
	d.Description = str(in["description"])
	d.Labels = stringMap(in["labels"])
	if snap := str(in["snapshot"]); snap != "" {
		// A name, a relative link or a self link: sent as projects/P/global/snapshots/N (rules §0).
		d.SourceSnapshot = SnapshotPath(project, lastSegment(snap))
		if m := snapshotProjectRE.FindStringSubmatch(snap); m != nil {
			d.SourceSnapshot = SnapshotPath(m[1], lastSegment(snap))
		}
	}
	if d, err = p.compute.InsertDisk(d); err != nil {
		return "", nil, err
	}
	return d.Path(), k.state(d, in, d.Labels), nil
}

// outputs are the attributes only the API decides (rules §1; a RegionDisk has no diskId, rules §2).
func (k diskKind) outputs() []string {
	out := []string{"creationTimestamp", "labelFingerprint", "users", "selfLink", "physicalBlockSizeBytes",
		"effectiveLabels", "pulumiLabels", "sourceSnapshotId"}
	if !k.regional {
		out = append(out, "diskId")
	}
	return out
}

// state is the provider's state for d: the inputs as given, with everything the API decides filled in.
// labels and pulumiLabels are the labels this stack manages; effectiveLabels are all of them (rules §0).
func (k diskKind) state(d Disk, inputs map[string]any, managed map[string]string) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	state["name"], state["project"] = d.Name, d.Project
	if k.regional {
		state["region"], state["replicaZones"] = d.Region, anyList(d.ReplicaZones)
	} else {
		state["zone"], state["diskId"] = d.Zone, d.ID
	}
	if d.SourceSnapshot != "" {
		state["snapshot"], state["sourceSnapshotId"] = d.SourceSnapshot, d.SourceSnapshotID // a v1 URL (rules §0)
	}
	state["size"] = d.SizeGB
	state["type"] = d.Type
	state["description"] = d.Description
	state["labels"] = anyMap(managed)
	state["pulumiLabels"] = anyMap(managed)
	state["effectiveLabels"] = anyMap(d.Labels)
	state["physicalBlockSizeBytes"] = d.PhysicalBlockSizeBytes
	state["creationTimestamp"] = d.CreationTimestamp
	state["labelFingerprint"] = d.LabelFingerprint
	state["selfLink"] = d.SelfLink()
	state["users"] = anyList(d.Users)
	state["resourcePolicies"] = anyList(d.ResourcePolicies)
	return state
}

// path parses a disk's ID in any of its import shapes (rules §1, §2) into its canonical path.
func (k diskKind) path(p *Provider, id string) (string, error) {
	if k.regional {
		f, err := parseImportID(id, []string{
			"projects/{project}/regions/{region}/disks/{name}", "{project}/{region}/{name}", "{region}/{name}", "{name}",
		}, map[string]string{"project": p.project, "region": p.region})
		return RegionDiskPath(f["project"], f["region"], f["name"]), err
	}
	f, err := parseImportID(id, []string{
		"projects/{project}/zones/{zone}/disks/{name}", "{project}/{zone}/{name}", "{zone}/{name}", "{name}",
	}, map[string]string{"project": p.project, "zone": p.zone})
	return DiskPath(f["project"], f["zone"], f["name"]), err
}

func (k diskKind) read(p *Provider, id string, oldInputs, oldState map[string]any) (string, map[string]any, map[string]any, error) {
	path, err := k.path(p, id)
	if err != nil {
		return "", nil, nil, err
	}
	d, err := p.compute.GetDisk(path)
	if IsNotFound(err) {
		return "", nil, nil, nil // gone: the engine drops it from the state
	}
	if err != nil {
		return "", nil, nil, err
	}
	state := k.state(d, oldInputs, managedLabels(oldState, d.Labels))
	var inputs map[string]any
	if len(oldInputs) == 0 {
		// Import: the inputs come from what was read, with an empty __defaults (rules §10). The bridge
		// leaves out an optional input whose value is its default or zero (extractSchemaInputs): type
		// pd-standard, an empty description, no labels.
		inputs = map[string]any{
			"name": d.Name, "project": d.Project, "size": d.SizeGB,
			"physicalBlockSizeBytes": d.PhysicalBlockSizeBytes, defaultsKey: []any{},
		}
		if d.Type != "pd-standard" {
			inputs["type"] = d.Type
		}
		if d.Regional() {
			inputs["region"], inputs["replicaZones"] = d.Region, anyList(d.ReplicaZones)
		} else {
			inputs["zone"] = d.Zone
		}
		if d.Description != "" {
			inputs["description"] = d.Description
		}
	} else {
		// Refresh: the recorded inputs take the live values of the same keys.
		inputs = clone(oldInputs)
		for k := range oldInputs {
			if v, ok := state[k]; ok && k != defaultsKey {
				inputs[k] = v
			}
		}
	}
	return d.Path(), inputs, state, nil
}

func (k diskKind) update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	path, err := k.path(p, id)
	if err != nil {
		return nil, err
	}
	managed := stringMap(news["labels"])
	if preview {
		state := withInputs(oldState, news)
		state["effectiveLabels"], state["pulumiLabels"], state["labelFingerprint"] = unknown{}, unknown{}, unknown{}
		return state, nil
	}
	// The provider works from its state, not from a fresh read: setLabels sends the labels planned from
	// the state's effectiveLabels with the state's labelFingerprint (rules §0, SetLabelsDiff), then
	// resize; it reads the disk only after. Labels changed by hand since the last refresh make the
	// fingerprint stale: Compute Engine answers 412 conditionNotMet and nothing changes (`up --refresh`
	// reads the new fingerprint first).
	if !same(anyMap(stringMap(oldState["labels"])), anyMap(managed)) {
		if _, err := p.compute.SetDiskLabels(path, plannedLabels(oldState, managed), str(oldState["labelFingerprint"])); err != nil {
			return nil, err
		}
	}
	if size, ok := num(news["size"]); ok && size != intOf(oldState["size"]) {
		if _, err := p.compute.ResizeDisk(path, size); err != nil {
			return nil, err
		}
	}
	d, err := p.compute.GetDisk(path)
	if err != nil {
		return nil, err
	}
	return k.state(d, news, managed), nil
}

func intOf(v any) int { n, _ := num(v); return n }

// delete detaches the disk from every instance that uses it, then deletes it (rules §8): nothing but the
// engine's protect and retainOnDelete stops a delete.
func (k diskKind) delete(p *Provider, id string, _ map[string]any) error {
	path, err := k.path(p, id)
	if err != nil {
		return err
	}
	d, err := p.compute.GetDisk(path)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, instance := range d.Users {
		if err := p.compute.DetachDisk(path, instance); err != nil && !IsNotFound(err) {
			return err
		}
	}
	return p.compute.DeleteDisk(path)
}
