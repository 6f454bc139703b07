package gcestandin

import (
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// diskKind is gcp:compute/disk:Disk (rules §1).
type diskKind struct{}

var (
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

func (diskKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, diskProps, DiskType)
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

func (diskKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	for _, key := range diffInputs(oldInputs, oldState, news, diskComputed) {
		switch {
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
		case !slices.Contains(diskInPlace, key):
			replaces = append(replaces, key)
		}
		changed = append(changed, key)
	}
	return changed, replaces
}

func isHyperdisk(inputs map[string]any) bool {
	t := lastSegment(str(inputs["type"]))
	return len(t) >= 9 && t[:9] == "hyperdisk"
}

func (diskKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, err := resolve(in["project"], p.project, "project")
	if err != nil {
		return "", nil, err
	}
	zone, err := resolve(in["zone"], p.zone, "zone")
	if err != nil {
		return "", nil, err
	}
	name := str(in["name"])
	id := DiskPath(project, zone, name)
	if preview {
		state := clone(in)
		delete(state, defaultsKey)
		state["project"], state["zone"] = project, zone
		for _, k := range []string{"diskId", "creationTimestamp", "labelFingerprint", "users", "selfLink",
			"physicalBlockSizeBytes", "effectiveLabels", "pulumiLabels"} {
			state[k] = unknown{}
		}
		if _, ok := in["size"]; !ok {
			state["size"] = unknown{}
		}
		return "", state, nil
	}
	size, _ := num(in["size"])
	block, _ := num(in["physicalBlockSizeBytes"])
	labels := stringMap(in["labels"])
	d, err := p.compute.InsertDisk(Disk{
		Name: name, Project: project, Zone: zone, SizeGB: size,
		Type:                   lastSegment(str(in["type"])), // sent as projects/P/zones/Z/diskTypes/T, read back short
		Description:            str(in["description"]),
		Labels:                 labels,
		PhysicalBlockSizeBytes: block,
		SourceSnapshot:         str(in["snapshot"]),
	})
	if err != nil {
		return "", nil, err
	}
	return id, diskState(d, in, labels), nil
}

// diskState is the provider's state for d: the inputs as given, with everything the API decides filled in.
// labels and pulumiLabels are the labels this stack manages; effectiveLabels are all of them (rules §0).
func diskState(d Disk, inputs map[string]any, managed map[string]string) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	state["name"], state["project"], state["zone"] = d.Name, d.Project, d.Zone
	state["size"] = d.SizeGB
	state["type"] = d.Type
	state["description"] = d.Description
	state["labels"] = anyMap(managed)
	state["pulumiLabels"] = anyMap(managed)
	state["effectiveLabels"] = anyMap(d.Labels)
	state["physicalBlockSizeBytes"] = d.PhysicalBlockSizeBytes
	state["diskId"] = d.ID
	state["creationTimestamp"] = d.CreationTimestamp
	state["labelFingerprint"] = d.LabelFingerprint
	state["selfLink"] = d.SelfLink()
	state["users"] = anyList(d.Users)
	state["resourcePolicies"] = anyList(d.ResourcePolicies)
	return state
}

func (diskKind) read(p *Provider, id string, oldInputs, oldState map[string]any) (string, map[string]any, map[string]any, error) {
	f, err := parseImportID(id, []string{
		"projects/{project}/zones/{zone}/disks/{name}", "{project}/{zone}/{name}", "{zone}/{name}", "{name}",
	}, map[string]string{"project": p.project, "zone": p.zone})
	if err != nil {
		return "", nil, nil, err
	}
	d, err := p.compute.GetDisk(f["project"], f["zone"], f["name"])
	if IsNotFound(err) {
		return "", nil, nil, nil // gone: the engine drops it from the state
	}
	if err != nil {
		return "", nil, nil, err
	}
	state := diskState(d, oldInputs, managedLabels(oldState, d.Labels))
	var inputs map[string]any
	if len(oldInputs) == 0 {
		// Import: the inputs come from what was read, with an empty __defaults (rules §10).
		inputs = map[string]any{
			"name": d.Name, "project": d.Project, "zone": d.Zone, "size": d.SizeGB, "type": d.Type,
			"physicalBlockSizeBytes": d.PhysicalBlockSizeBytes, defaultsKey: []any{},
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
	return DiskPath(d.Project, d.Zone, d.Name), inputs, state, nil
}

func (diskKind) update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	f, err := parseImportID(id, []string{"projects/{project}/zones/{zone}/disks/{name}"}, nil)
	if err != nil {
		return nil, err
	}
	managed := stringMap(news["labels"])
	if preview {
		state := withInputs(oldState, news)
		state["effectiveLabels"], state["pulumiLabels"], state["labelFingerprint"] = unknown{}, unknown{}, unknown{}
		return state, nil
	}
	d, err := p.compute.GetDisk(f["project"], f["zone"], f["name"])
	if err != nil {
		return nil, err
	}
	if !same(anyMap(stringMap(oldState["labels"])), anyMap(managed)) {
		// setLabels with the effective labels: the old ones, minus the managed keys removed, plus the new
		// managed ones (rules §0, SetLabelsDiff).
		effective := map[string]string{}
		for k, v := range d.Labels {
			if _, wasManaged := stringMap(oldState["labels"])[k]; !wasManaged {
				effective[k] = v
			}
		}
		for k, v := range managed {
			effective[k] = v
		}
		if d, err = p.compute.SetDiskLabels(d.Project, d.Zone, d.Name, effective, d.LabelFingerprint); err != nil {
			return nil, err
		}
	}
	if size, ok := num(news["size"]); ok && size != d.SizeGB {
		if d, err = p.compute.ResizeDisk(d.Project, d.Zone, d.Name, size); err != nil {
			return nil, err
		}
	}
	return diskState(d, news, managed), nil
}

// delete detaches the disk from every instance that uses it, then deletes it (rules §8): nothing but the
// engine's protect and retainOnDelete stops a delete.
func (diskKind) delete(p *Provider, id string, _ map[string]any) error {
	f, err := parseImportID(id, []string{"projects/{project}/zones/{zone}/disks/{name}"}, nil)
	if err != nil {
		return err
	}
	d, err := p.compute.GetDisk(f["project"], f["zone"], f["name"])
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, instance := range d.Users {
		if err := p.compute.DetachDisk(d.Project, d.Zone, d.Name, instance); err != nil && !IsNotFound(err) {
			return err
		}
	}
	return p.compute.DeleteDisk(d.Project, d.Zone, d.Name)
}
