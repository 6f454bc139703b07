package infra

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DumpDisk is the Compute Engine persistent disk that holds loklak's data directory, and its backups.
// In external mode it declares no GCP resource and only carries the disk's identity.
type DumpDisk struct {
	pulumi.ResourceState

	// Name, Zones and SizeGB come from the disk's outputs when the stack manages it, so everything
	// downstream (the PV's handle, capacity and zone affinity) waits for the disk.
	Name pulumi.StringOutput
	// Zones are where the disk can attach: its zone, or a regional disk's two replica zones.
	Zones  pulumi.StringArrayOutput
	SizeGB pulumi.IntOutput
	Type   pulumi.StringOutput
	// Regional says whether the disk is a regional persistent disk.
	Regional bool
	// VolumeHandle is projects/P/zones/Z/disks/N or projects/P/regions/R/disks/N: the PD CSI driver's
	// volume ID, and the disk's ID in Pulumi.
	VolumeHandle pulumi.StringOutput
	// Disk is the managed disk (a *compute.Disk or *compute.RegionDisk); nil in external mode.
	Disk pulumi.CustomResource
	// SnapshotPolicy is nil when no schedule is configured.
	SnapshotPolicy *compute.ResourcePolicy
}

// DumpDiskArgs says where the disk lives, what it is, and how it is backed up.
type DumpDiskArgs struct {
	Project string
	Zone    string
	// Region is the zone's region: a regional disk's, and the snapshot schedule's.
	Region    string
	Disk      DiskConfig
	Snapshots SnapshotConfig
}

// handle is the disk's volume handle as config gives it.
func (a DumpDiskArgs) handle() string {
	if a.Disk.Regional() {
		return regionalDiskHandle(a.Project, a.Region, a.Disk.Name)
	}
	return diskHandle(a.Project, a.Zone, a.Disk.Name)
}

// NewDumpDisk declares (or, in external mode, describes) the dumps disk.
func NewDumpDisk(ctx *pulumi.Context, name string, cfg DumpDiskArgs, opts ...pulumi.ResourceOption) (*DumpDisk, error) {
	d := &DumpDisk{Regional: cfg.Disk.Regional()}
	if err := ctx.RegisterComponentResource("loklak-dumps:storage:DumpDisk", name, d, opts...); err != nil {
		return nil, err
	}
	zones := []string{cfg.Zone}
	if d.Regional {
		zones = cfg.Disk.ReplicaZones
	}

	if !cfg.Disk.Mode.Managed() {
		d.Name = pulumi.String(cfg.Disk.Name).ToStringOutput()
		d.Zones = pulumi.ToStringArray(zones).ToStringArrayOutput()
		d.SizeGB = pulumi.Int(cfg.Disk.SizeGB).ToIntOutput()
		d.Type = pulumi.String(cfg.Disk.Type).ToStringOutput()
		d.VolumeHandle = pulumi.String(cfg.handle()).ToStringOutput()
		return d, ctx.RegisterResourceOutputs(d, pulumi.Map{"volumeHandle": d.VolumeHandle})
	}

	// The dumps are the reason this project exists: by default the engine refuses to delete or replace the
	// disk (protect), and even a delete the user allows leaves it in GCP (retainOnDelete). Growing Size is
	// an in-place update; shrinking it would be a replacement, which protect turns into a loud error.
	diskOpts := []pulumi.ResourceOption{
		pulumi.Parent(d),
		pulumi.Protect(cfg.Disk.Protect),
		pulumi.RetainOnDelete(cfg.Disk.RetainOnDelete),
	}
	if cfg.Disk.Mode == DiskAdopt {
		// Adopt the existing disk by its ID instead of creating one. The engine ignores this option once
		// the disk is in the state, so later updates never recreate it.
		diskOpts = append(diskOpts, pulumi.Import(pulumi.ID(cfg.handle())))
	}
	// The logical name never follows diskName: renaming the disk must be a replacement, which protect
	// refuses before anything changes, not a new resource plus the deletion of the old one, which the engine
	// would start creating before the protected delete fails. The alias carries stacks deployed when the
	// logical name was the disk's name. It follows the snapshot the disk is made from, and only that: a
	// restore is a new disk beside the old one, which leaves the stack (see docs/restore.md).
	logical := "dump-disk" + cfg.Disk.originTag()
	aliases := []pulumi.Alias{{Name: pulumi.String(cfg.Disk.Name)}}
	if !cfg.Disk.Restored() {
		// A blank disk that turns zonal to regional (or back) is the same disk to the engine: a replacement,
		// which protect refuses before anything changes. As two types it would be a new, empty disk plus
		// the deletion of the old one, and the engine would move loklak onto the empty disk before the
		// protected delete failed. A change of replication goes through a snapshot (docs/restore.md).
		other := regionDiskType
		if d.Regional {
			other = zonalDiskType
		}
		aliases = append(aliases, pulumi.Alias{Type: pulumi.String(other), Name: pulumi.String(logical)})
	}
	diskOpts = append(diskOpts, pulumi.Aliases(aliases))
	var snapshot pulumi.StringPtrInput
	if cfg.Disk.Restored() {
		snapshot = pulumi.String(cfg.Disk.SourceSnapshot)
	}
	var disk pulumi.CustomResource
	var project, location pulumi.StringOutput // location: the zone, or a regional disk's region
	handleOf := diskHandle
	if d.Regional {
		rd, err := compute.NewRegionDisk(ctx, logical, &compute.RegionDiskArgs{
			Name:         pulumi.String(cfg.Disk.Name),
			Project:      pulumi.String(cfg.Project),
			Region:       pulumi.String(cfg.Region),
			ReplicaZones: pulumi.ToStringArray(zones),
			Size:         pulumi.Int(cfg.Disk.SizeGB),
			Type:         pulumi.String(cfg.Disk.Type),
			Labels:       pulumi.ToStringMap(cfg.Disk.Labels),
			Snapshot:     snapshot,
		}, diskOpts...)
		if err != nil {
			return nil, err
		}
		disk, project, location, handleOf = rd, rd.Project, rd.Region, regionalDiskHandle
		d.Name, d.SizeGB, d.Type = rd.Name, rd.Size, rd.Type.Elem()
		// The provider reports replica zones as v1 URLs (rules §0); the PV's affinity wants their names.
		d.Zones = rd.ReplicaZones.ApplyT(func(urls []string) []string {
			names := make([]string, len(urls))
			for i, u := range urls {
				names[i] = u[strings.LastIndexByte(u, '/')+1:]
			}
			return names
		}).(pulumi.StringArrayOutput)
	} else {
		zd, err := compute.NewDisk(ctx, logical, &compute.DiskArgs{
			Name:     pulumi.String(cfg.Disk.Name),
			Project:  pulumi.String(cfg.Project),
			Zone:     pulumi.String(cfg.Zone),
			Size:     pulumi.Int(cfg.Disk.SizeGB),
			Type:     pulumi.String(cfg.Disk.Type),
			Labels:   pulumi.ToStringMap(cfg.Disk.Labels),
			Snapshot: snapshot,
		}, diskOpts...)
		if err != nil {
			return nil, err
		}
		disk, project, location = zd, zd.Project, zd.Zone
		d.Name, d.SizeGB, d.Type = zd.Name, zd.Size, zd.Type.Elem()
		d.Zones = pulumi.ToStringArrayOutput([]pulumi.StringOutput{zd.Zone})
	}
	d.VolumeHandle = pulumi.All(project, location, d.Name).ApplyT(func(v []any) string {
		return handleOf(v[0].(string), v[1].(string), v[2].(string))
	}).(pulumi.StringOutput)
	d.Disk = disk

	if cfg.Snapshots.Enabled() {
		var err error
		if d.SnapshotPolicy, err = newSnapshotSchedule(ctx, cfg, disk, project, d.Name, pulumi.Parent(d)); err != nil {
			return nil, err
		}
	}
	return d, ctx.RegisterResourceOutputs(d, pulumi.Map{
		"diskId":       disk.ID(),
		"volumeHandle": d.VolumeHandle,
	})
}

// newSnapshotSchedule declares a snapshot schedule in the disk's region and attaches it to the disk.
// The attachment is its own resource because the disk's resourcePolicies field cannot be updated in place.
func newSnapshotSchedule(ctx *pulumi.Context, cfg DumpDiskArgs, disk pulumi.CustomResource, project, diskName pulumi.StringOutput, parent pulumi.ResourceOption) (*compute.ResourcePolicy, error) {
	s := cfg.Snapshots
	schedule := &compute.ResourcePolicySnapshotSchedulePolicyScheduleArgs{}
	switch s.Schedule {
	case "hourly":
		schedule.HourlySchedule = &compute.ResourcePolicySnapshotSchedulePolicyScheduleHourlyScheduleArgs{
			HoursInCycle: pulumi.Int(s.HoursInCycle),
			StartTime:    pulumi.String(s.StartTime),
		}
	case "daily":
		schedule.DailySchedule = &compute.ResourcePolicySnapshotSchedulePolicyScheduleDailyScheduleArgs{
			DaysInCycle: pulumi.Int(1),
			StartTime:   pulumi.String(s.StartTime),
		}
	case "weekly":
		schedule.WeeklySchedule = &compute.ResourcePolicySnapshotSchedulePolicyScheduleWeeklyScheduleArgs{
			DayOfWeeks: compute.ResourcePolicySnapshotSchedulePolicyScheduleWeeklyScheduleDayOfWeekArray{
				&compute.ResourcePolicySnapshotSchedulePolicyScheduleWeeklyScheduleDayOfWeekArgs{
					Day:       pulumi.String(s.DayOfWeek),
					StartTime: pulumi.String(s.StartTime),
				},
			},
		}
	default:
		return nil, fmt.Errorf("snapshot schedule %q has no Compute Engine form", s.Schedule) // ParseConfig allows none
	}
	policyName := cfg.Disk.SnapshotPolicyName()
	var properties compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesPtrInput
	if len(cfg.Disk.Labels) > 0 {
		// Only with labels to give: the provider refuses a snapshotProperties block that sets none of
		// labels, storageLocations and guestFlush (prod's unlabelled disk would fail its first preview).
		properties = &compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesArgs{
			Labels: pulumi.ToStringMap(cfg.Disk.Labels),
		}
	}
	// Logical names that follow config only as the disk's does; aliases carry stacks that used policyName.
	logical := "snapshot-schedule" + cfg.Disk.originTag()
	formerly := pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(policyName)}})
	// A disk the stack lets go but keeps in GCP (retainOnDelete: a destroy, or a restore onto a new disk)
	// keeps its schedule: the engine then calls nothing on it, which also matters when its zone is down.
	// Without retainOnDelete a delete goes as before: the attachment, the policy, then the disk.
	withDisk := []pulumi.ResourceOption{parent, formerly}
	if cfg.Disk.RetainOnDelete {
		withDisk = append(withDisk, pulumi.DeletedWith(disk))
	}
	policy, err := compute.NewResourcePolicy(ctx, logical, &compute.ResourcePolicyArgs{
		Name: pulumi.String(policyName),
		// The disk's own project, from its outputs: the schedule is created only once the disk is there
		// (an import that fails leaves nothing behind).
		Project: project,
		Region:  pulumi.String(cfg.Region),
		SnapshotSchedulePolicy: &compute.ResourcePolicySnapshotSchedulePolicyArgs{
			Schedule: schedule,
			RetentionPolicy: &compute.ResourcePolicySnapshotSchedulePolicyRetentionPolicyArgs{
				MaxRetentionDays: pulumi.Int(s.RetentionDays),
				// Snapshots outlive the disk: they are the way back if the disk is ever lost.
				OnSourceDiskDelete: pulumi.String("KEEP_AUTO_SNAPSHOTS"),
			},
			SnapshotProperties: properties,
		},
	}, slices.Concat(withDisk, []pulumi.ResourceOption{
		// Every change replaces the policy instead of updating it: this provider's update is a PATCH that
		// always carries guestFlush, which Compute Engine refuses whenever snapshotProperties is sent
		// (hashicorp/terraform-provider-google#20499, fixed only in pulumi-gcp v8). Deleting first keeps
		// the name, and the engine then deletes the attachment before the policy (Compute Engine refuses
		// to delete an attached policy) and attaches the new one after: the disk never holds two.
		pulumi.ReplaceOnChanges([]string{"*"}), pulumi.DeleteBeforeReplace(true)})...)
	if err != nil {
		return nil, err
	}
	// Every input of the attachment forces a replacement anyway; delete-before-replace keeps the disk at
	// one schedule while it is swapped. A regional disk takes the regional attachment type.
	attachOpts := slices.Concat(withDisk, []pulumi.ResourceOption{pulumi.DeleteBeforeReplace(true)})
	if cfg.Disk.Regional() {
		_, err = compute.NewRegionDiskResourcePolicyAttachment(ctx, logical, &compute.RegionDiskResourcePolicyAttachmentArgs{
			Disk:    diskName,
			Name:    policy.Name,
			Project: project,
			Region:  pulumi.String(cfg.Region),
		}, attachOpts...)
		return policy, err
	}
	_, err = compute.NewDiskResourcePolicyAttachment(ctx, logical, &compute.DiskResourcePolicyAttachmentArgs{
		Disk:    diskName,
		Name:    policy.Name,
		Project: project,
		Zone:    pulumi.String(cfg.Zone),
	}, attachOpts...)
	return policy, err
}

// The GCP provider's type tokens for the two kinds of disk.
const (
	zonalDiskType  = "gcp:compute/disk:Disk"
	regionDiskType = "gcp:compute/regionDisk:RegionDisk"
)

// regionalDiskHandle is a regional disk's ID, as the PD CSI driver and the GCP provider spell it.
func regionalDiskHandle(project, region, name string) string {
	return fmt.Sprintf("projects/%s/regions/%s/disks/%s", project, region, name)
}

// diskHandle is a zonal disk's ID as the PD CSI driver (volumeHandle), the GCP provider (ID) and Pulumi's
// import all spell it.
func diskHandle(project, zone, name string) string {
	return fmt.Sprintf("projects/%s/zones/%s/disks/%s", project, zone, name)
}
