package gcestandin

import (
	"fmt"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// attachmentKind is gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment (rules §4):
// every input is ForceNew and there is no update.
type attachmentKind struct{}

var attachmentInputs = []string{"disk", "name", "zone", "project"}

func (attachmentKind) check(_ *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, attachmentInputs, AttachmentType)
	if v, ok := inputs["disk"]; !ok || v == nil {
		failures = append(failures, failure("disk", "Missing required property 'disk'"))
	}
	// An omitted name is autonamed like any other, though it must be the policy's name (rules §0).
	inputs[defaultsKey] = autoname(inputs, olds, name, seed)
	return inputs, failures
}

func (attachmentKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, []string{"zone", "project"})
	return changed, changed
}

func (p *Provider) attachmentScope(in map[string]any) (project, zone string, err error) {
	if project, err = resolve(in["project"], p.project, "project"); err != nil {
		return "", "", err
	}
	zone, err = resolve(in["zone"], p.zone, "zone")
	return project, zone, err
}

// create adds the policy to the disk. disk and name go into the URL as given, so a self link or an ID as
// disk makes a URL that finds no disk (rules §4).
func (attachmentKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	project, zone, err := p.attachmentScope(in)
	if err != nil {
		return "", nil, err
	}
	disk, name := str(in["disk"]), str(in["name"])
	state := clone(in)
	delete(state, defaultsKey)
	state["project"], state["zone"] = project, zone
	if preview {
		return "", state, nil
	}
	policy := PolicyPath(project, RegionOf(zone), name)
	if _, err := p.compute.AddResourcePolicies(project, zone, disk, []string{policy}); err != nil {
		return "", nil, err
	}
	return attachmentID(project, zone, disk, name), state, nil
}

func attachmentID(project, zone, disk, name string) string {
	return fmt.Sprintf("%s/%s/%s/%s", project, zone, disk, name)
}

func (p *Provider) parseAttachmentID(id string) (map[string]string, error) {
	return parseImportID(id, []string{
		"projects/{project}/zones/{zone}/disks/{disk}/{name}", "{project}/{zone}/{disk}/{name}", "{zone}/{disk}/{name}", "{disk}/{name}",
	}, map[string]string{"project": p.project, "zone": p.zone})
}

// read finds the policy among the disk's; when it is missing, the attachment is gone (rules §4).
func (attachmentKind) read(p *Provider, id string, oldInputs, _ map[string]any) (string, map[string]any, map[string]any, error) {
	f, err := p.parseAttachmentID(id)
	if err != nil {
		return "", nil, nil, err
	}
	d, err := p.compute.GetDisk(f["project"], f["zone"], f["disk"])
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	if !slices.ContainsFunc(d.ResourcePolicies, func(u string) bool { return lastSegment(u) == f["name"] }) {
		return "", nil, nil, nil
	}
	state := map[string]any{"disk": f["disk"], "name": f["name"], "zone": f["zone"], "project": f["project"]}
	inputs := clone(oldInputs)
	if len(inputs) == 0 {
		inputs = clone(state)
		inputs[defaultsKey] = []any{}
	}
	return attachmentID(f["project"], f["zone"], f["disk"], f["name"]), inputs, state, nil
}

func (attachmentKind) update(*Provider, string, map[string]any, map[string]any, bool) (map[string]any, error) {
	return nil, fmt.Errorf("%s has no update: every input forces a replacement", AttachmentType)
}

func (attachmentKind) delete(p *Provider, id string, _ map[string]any) error {
	f, err := p.parseAttachmentID(id)
	if err != nil {
		return err
	}
	policy := PolicyPath(f["project"], RegionOf(f["zone"]), f["name"])
	if _, err := p.compute.RemoveResourcePolicies(f["project"], f["zone"], f["disk"], []string{policy}); err != nil && !IsNotFound(err) {
		return err
	}
	return nil
}
