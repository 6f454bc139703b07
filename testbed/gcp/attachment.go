package gcp

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// attachmentKind is gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment or, regional,
// gcp:compute/regionDiskResourcePolicyAttachment:RegionDiskResourcePolicyAttachment (rules §4): every
// input is ForceNew and there is no update.
type attachmentKind struct{ regional bool }

// scope is the input that locates the disk: zone, or region for a regional disk.
func (k attachmentKind) scope() string {
	if k.regional {
		return "region"
	}
	return "zone"
}

// props are the attachment's inputs.
func (k attachmentKind) props() []string { return []string{"disk", "name", k.scope(), "project"} }

func (k attachmentKind) typ() string {
	if k.regional {
		return RegionAttachmentType
	}
	return AttachmentType
}

func (k attachmentKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, k.props(), k.typ())
	if v, ok := inputs["disk"]; !ok || v == nil {
		failures = append(failures, failure("disk", "Missing required property 'disk'"))
	}
	// An omitted name is autonamed like any other, though it must be the policy's name (rules §0).
	inputs[defaultsKey] = autoname(inputs, olds, name, seed)
	return inputs, failures
}

func (k attachmentKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, k.props(), []string{k.scope(), "project"})
	return changed, changed
}

// location resolves the attachment's project and its disk's zone or region, with the provider's fallbacks.
func (k attachmentKind) location(p *Provider, in map[string]any) (project, where string, err error) {
	if project, err = resolve(in["project"], p.project, "project"); err != nil {
		return "", "", err
	}
	fallback := p.zone
	if k.regional {
		fallback = p.region
	}
	where, err = resolve(in[k.scope()], fallback, k.scope())
	return project, where, err
}

// diskPath and policyPath are the disk's and the policy's paths for an attachment located at where.
func (k attachmentKind) diskPath(project, where, disk string) string {
	if k.regional {
		return RegionDiskPath(project, where, disk)
	}
	return DiskPath(project, where, disk)
}

func (k attachmentKind) policyPath(project, where, name string) string {
	if k.regional {
		return PolicyPath(project, where, name)
	}
	return PolicyPath(project, RegionOf(where), name)
}

// create adds the policy to the disk. disk and name go into the URL as given, so a self link or an ID as
// disk makes a URL that finds no disk (rules §4).
func (k attachmentKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, where, err := k.location(p, in)
	if err != nil {
		return "", nil, err
	}
	disk, name := str(in["disk"]), str(in["name"])
	state := withoutDefaults(in)
	state["project"], state[k.scope()] = project, where
	if preview {
		return "", state, nil
	}
	if _, err := p.compute.AddResourcePolicies(k.diskPath(project, where, disk), []string{k.policyPath(project, where, name)}); err != nil {
		return "", nil, err
	}
	return attachmentID(project, where, disk, name), state, nil
}

// attachmentID is {project}/{zone or region}/{disk}/{policy name} (rules §4).
func attachmentID(project, where, disk, name string) string {
	return fmt.Sprintf("%s/%s/%s/%s", project, where, disk, name)
}

// parseID reads an attachment's ID in any of its import shapes; "where" is its zone or region.
func (k attachmentKind) parseID(p *Provider, id string) (map[string]string, error) {
	scopes, fallback := "zones", p.zone
	if k.regional {
		scopes, fallback = "regions", p.region
	}
	f, err := parseImportID(id, []string{
		"projects/{project}/" + scopes + "/{where}/disks/{disk}/{name}", "{project}/{where}/{disk}/{name}", "{where}/{disk}/{name}", "{disk}/{name}",
	}, map[string]string{"project": p.project, "where": fallback})
	return f, err
}

// read finds the policy among the disk's; when it is missing, the attachment is gone (rules §4).
func (k attachmentKind) read(p *Provider, id string, oldInputs, _ map[string]any) (string, map[string]any, map[string]any, error) {
	f, err := k.parseID(p, id)
	if err != nil {
		return "", nil, nil, err
	}
	d, err := p.compute.GetDisk(k.diskPath(f["project"], f["where"], f["disk"]))
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	if !slices.ContainsFunc(d.ResourcePolicies, func(u string) bool { return lastSegment(u) == f["name"] }) {
		return "", nil, nil, nil
	}
	state := map[string]any{"disk": f["disk"], "name": f["name"], k.scope(): f["where"], "project": f["project"]}
	inputs := clone(oldInputs)
	if len(inputs) == 0 {
		inputs = clone(state)
		inputs[defaultsKey] = []any{}
	}
	return attachmentID(f["project"], f["where"], f["disk"], f["name"]), inputs, state, nil
}

func (k attachmentKind) update(*Provider, string, map[string]any, map[string]any, bool) (map[string]any, error) {
	return nil, fmt.Errorf("%s has no update: every input forces a replacement", k.typ())
}

func (k attachmentKind) delete(p *Provider, id string, _ map[string]any) error {
	f, err := k.parseID(p, id)
	if err != nil {
		return err
	}
	policy := k.policyPath(f["project"], f["where"], f["name"])
	if _, err := p.compute.RemoveResourcePolicies(k.diskPath(f["project"], f["where"], f["disk"]), []string{policy}); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
