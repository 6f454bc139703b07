package gcp

import (
	"context"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// Data sources (invokes) the stand-in answers.
const (
	GetDiskToken       = "gcp:compute/getDisk:getDisk"
	GetRegionDiskToken = "gcp:compute/getRegionDisk:getRegionDisk"
)

// Invoke implements plugin.Provider for the two disk data sources the program reads. Like the real
// provider's (terraform-provider-google's data sources: the resource's Read, then
// `if d.Id() == "" { return fmt.Errorf("%s not found", id) }`), a disk that does not exist is an error
// naming its ID, not an empty answer. The project, zone and region fall back to the provider's config.
func (p *Provider) Invoke(_ context.Context, req plugin.InvokeRequest) (plugin.InvokeResponse, error) {
	args := plainMap(req.Args)
	name, _ := args["name"].(string)
	project := p.orDefault(args["project"], p.project)
	var path string
	switch string(req.Tok) {
	case GetDiskToken:
		path = fmt.Sprintf("projects/%s/zones/%s/disks/%s", project, p.orDefault(args["zone"], p.zone), name)
	case GetRegionDiskToken:
		path = fmt.Sprintf("projects/%s/regions/%s/disks/%s", project, p.orDefault(args["region"], p.region), name)
	default:
		return plugin.InvokeResponse{}, fmt.Errorf("the Compute Engine stand-in does not implement the data source %s (it implements %s and %s)",
			req.Tok, GetDiskToken, GetRegionDiskToken)
	}
	disk, err := p.compute.GetDisk(path)
	if IsNotFound(err) {
		return plugin.InvokeResponse{}, fmt.Errorf("%s not found", path)
	}
	if err != nil {
		return plugin.InvokeResponse{}, err
	}
	out := map[string]any{
		"id": path, "name": disk.Name, "project": disk.Project, "size": disk.SizeGB, "type": disk.Type,
		"labels": disk.Labels, "labelFingerprint": disk.LabelFingerprint, "users": disk.Users,
	}
	if disk.Regional() {
		out["region"], out["replicaZones"] = disk.Region, disk.ReplicaZones
	} else {
		out["zone"] = disk.Zone
	}
	return plugin.InvokeResponse{Properties: resource.NewPropertyMapFromMap(out)}, nil
}

// orDefault is v when it is a non-empty string, else fallback.
func (p *Provider) orDefault(v any, fallback string) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return fallback
}
