package gcp

import (
	"cmp"
	"regexp"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// addressKind is gcp:compute/address:Address, a regional EXTERNAL address (rules §5).
type addressKind struct{}

var (
	addressProps = []string{"name", "region", "project", "address", "addressType", "networkTier", "description",
		"labels", "purpose", "prefixLength", "subnetwork", "network", "ipVersion", "ipv6EndpointType"}
	// addressComputed are Optional+Computed: leaving them out is never a change.
	addressComputed = []string{"name", "region", "project", "address", "addressType", "networkTier", "purpose",
		"prefixLength", "subnetwork", "network"}
	// addressNameRE is the provider's own check of the name (rules §5).
	addressNameRE = regexp.MustCompile(`^(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)$`)
)

func (addressKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, addressProps, AddressType)
	defaults := autoname(inputs, olds, name, seed)
	if n, ok := inputs["name"].(string); ok && !addressNameRE.MatchString(n) {
		failures = append(failures, failure("name", "%q must match %q", n, addressNameRE.String()))
	}
	if _, ok := inputs["addressType"]; !ok {
		inputs["addressType"] = "EXTERNAL" // the schema's default (rules §5)
		defaults = append(defaults, "addressType")
	}
	if t := str(inputs["addressType"]); t != "EXTERNAL" && t != "INTERNAL" && !isUnknown(inputs["addressType"]) {
		failures = append(failures, failure("addressType", "expected address_type to be one of [INTERNAL EXTERNAL], got %s", t))
	}
	if v, ok := inputs["networkTier"]; ok && !isUnknown(v) && str(v) != "PREMIUM" && str(v) != "STANDARD" {
		failures = append(failures, failure("networkTier", "expected network_tier to be one of [PREMIUM STANDARD], got %s", str(v)))
	}
	inputs[defaultsKey] = defaults
	return inputs, failures
}

// diff: everything but labels forces a new address (rules §5).
func (addressKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, addressProps, addressComputed)
	for _, key := range changed {
		if key != "labels" {
			replaces = append(replaces, key)
		}
	}
	return withLabelOutputs(changed, oldState, news), replaces
}

func (addressKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, region, err := p.regionalScope(in)
	if err != nil {
		return "", nil, err
	}
	if preview {
		state := withoutDefaults(in)
		state["project"], state["region"] = project, region
		for _, k := range []string{"creationTimestamp", "labelFingerprint", "users", "selfLink", "effectiveLabels", "pulumiLabels", "networkTier"} {
			state[k] = unknown{}
		}
		if _, ok := in["address"]; !ok {
			state["address"] = unknown{}
		}
		return "", state, nil
	}
	a, err := p.compute.InsertAddress(Address{
		Name: str(in["name"]), Project: project, Region: region, Address: str(in["address"]),
		AddressType: str(in["addressType"]), NetworkTier: cmp.Or(str(in["networkTier"]), "PREMIUM"),
		Description: str(in["description"]), Labels: stringMap(in["labels"]),
	})
	if err != nil {
		return "", nil, err
	}
	return AddressPath(project, region, a.Name), addressState(a, in, stringMap(in["labels"])), nil
}

func addressState(a Address, inputs map[string]any, managed map[string]string) map[string]any {
	state := clone(inputs)
	delete(state, defaultsKey)
	state["name"], state["project"], state["region"] = a.Name, a.Project, a.Region
	state["address"], state["addressType"], state["networkTier"] = a.Address, cmp.Or(a.AddressType, "EXTERNAL"), a.NetworkTier
	state["description"] = a.Description
	state["labels"], state["pulumiLabels"], state["effectiveLabels"] = anyMap(managed), anyMap(managed), anyMap(a.Labels)
	state["creationTimestamp"], state["labelFingerprint"], state["selfLink"] = a.CreationTimestamp, a.LabelFingerprint, a.SelfLink()
	state["users"] = anyList(a.Users)
	return state
}

func (addressKind) read(p *Provider, id string, oldInputs, oldState map[string]any) (string, map[string]any, map[string]any, error) {
	f, err := parseImportID(id, regionalIDs("addresses"), map[string]string{"project": p.project, "region": p.region})
	if err != nil {
		return "", nil, nil, err
	}
	a, err := p.compute.GetAddress(f["project"], f["region"], f["name"])
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	state := addressState(a, oldInputs, managedLabels(oldState, a.Labels))
	inputs := clone(oldInputs)
	if len(oldInputs) == 0 {
		// Import: inputs from what was read, with an empty __defaults (rules §10). Read maps an empty
		// addressType to EXTERNAL (rules §5), and the bridge leaves out an optional input at its default
		// (extractSchemaInputs), so an EXTERNAL address's inputs have no addressType.
		inputs = map[string]any{"name": a.Name, "project": a.Project, "region": a.Region, "address": a.Address,
			"networkTier": a.NetworkTier, defaultsKey: []any{}}
		if t := str(state["addressType"]); t != "EXTERNAL" {
			inputs["addressType"] = t
		}
	}
	return AddressPath(a.Project, a.Region, a.Name), inputs, state, nil
}

// update changes labels only: every other input replaces the address.
func (addressKind) update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error) {
	if preview {
		return withInputs(oldState, news), nil
	}
	f, err := parseImportID(id, []string{"projects/{project}/regions/{region}/addresses/{name}"}, nil)
	if err != nil {
		return nil, err
	}
	// As for a disk: the labels planned from the state, with the state's labelFingerprint (rules §5).
	managed := stringMap(news["labels"])
	a, err := p.compute.SetAddressLabels(f["project"], f["region"], f["name"], plannedLabels(oldState, managed), str(oldState["labelFingerprint"]))
	if err != nil {
		return nil, err
	}
	return addressState(a, news, managed), nil
}

func (addressKind) delete(p *Provider, id string, _ map[string]any) error {
	f, err := parseImportID(id, []string{"projects/{project}/regions/{region}/addresses/{name}"}, nil)
	if err != nil {
		return err
	}
	if err := p.compute.DeleteAddress(f["project"], f["region"], f["name"]); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
