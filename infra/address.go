package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ServiceAddress is the static external address of the LoadBalancer Service: the address people use to
// reach /dump/, which must survive a recreated Service.
type ServiceAddress struct {
	pulumi.ResourceState

	Address *compute.Address
	// IP is the reserved address, from the Address's outputs; the Service asks for it.
	IP pulumi.StringOutput
}

// NewServiceAddress reserves (create) or adopts (import) a regional static external address in the
// disk's project and region.
func NewServiceAddress(ctx *pulumi.Context, name string, cfg AddressConfig, project, region string, opts ...pulumi.ResourceOption) (*ServiceAddress, error) {
	a := &ServiceAddress{}
	if err := ctx.RegisterComponentResource("loklak-dumps:network:ServiceAddress", name, a, opts...); err != nil {
		return nil, err
	}
	// Like the disk: the engine refuses to delete or replace it, and a delete that is allowed (after
	// `pulumi state unprotect`) still leaves it reserved in GCP. Losing it would change the address of
	// /dump/ for everyone who uses it.
	addressOpts := []pulumi.ResourceOption{pulumi.Parent(a), pulumi.Protect(true), pulumi.RetainOnDelete(true)}
	if cfg.Mode == AddressAdopt {
		// The engine ignores this once the address is in the state.
		addressOpts = append(addressOpts, pulumi.Import(pulumi.ID(fmt.Sprintf("projects/%s/regions/%s/addresses/%s", project, region, cfg.Name))))
	}
	address, err := compute.NewAddress(ctx, "address", &compute.AddressArgs{
		Name:        pulumi.String(cfg.Name),
		Project:     pulumi.String(project),
		Region:      pulumi.String(region),
		AddressType: pulumi.String("EXTERNAL"),
	}, addressOpts...)
	if err != nil {
		return nil, err
	}
	a.Address, a.IP = address, address.Address
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{"address": a.IP})
}
