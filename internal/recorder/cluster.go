package recorder

import (
	"context"
	"slices"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Cluster is a fake infra.Cluster for programs run under mocks: every namespace exists except those in
// Missing, created by the stack only those in Created; Volumes are the stack's PersistentVolumes there are
// (none by default, as on a first deployment).
type Cluster struct {
	Missing []string
	Created []string
	Volumes []infra.Volume
}

// Namespace implements infra.Cluster.
func (c Cluster) Namespace(_ context.Context, name string) (infra.NamespaceState, error) {
	return infra.NamespaceState{Exists: !slices.Contains(c.Missing, name), CreatedByStack: slices.Contains(c.Created, name)}, nil
}

// VolumesOnDisk implements infra.Cluster.
func (c Cluster) VolumesOnDisk(_ context.Context, handle string) ([]infra.Volume, error) {
	var out []infra.Volume
	for _, v := range c.Volumes {
		if v.Handle == handle {
			out = append(out, v)
		}
	}
	return out, nil
}

// Program is the real program (infra.StackOn) checked against this cluster.
func (c Cluster) Program(ctx *pulumi.Context) (pulumi.Map, error) {
	return infra.StackOn(ctx, func(infra.KubeConfig) (infra.Cluster, error) { return c, nil })
}
