package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// DumpDisk is the Compute Engine persistent disk that holds loklak's data directory, and its backups.
// In external mode it declares no GCP resource and only carries the disk's identity.
type DumpDisk struct {
	pulumi.ResourceState

	// Name, Zone and SizeGB come from the disk's outputs when the stack manages it, so everything
	// downstream (the PV's handle, capacity and zone affinity) waits for the disk.
	Name   pulumi.StringOutput
	Zone   pulumi.StringOutput
	SizeGB pulumi.IntOutput
	Type   pulumi.StringOutput
	// VolumeHandle is projects/P/zones/Z/disks/N, the PD CSI driver's volume ID.
	VolumeHandle pulumi.StringOutput
	// Disk is nil in external mode.
	Disk *compute.Disk
	// SnapshotPolicy is nil when no schedule is configured.
	SnapshotPolicy *compute.ResourcePolicy
}

// DumpDiskArgs says where the disk lives, what it is, and how it is backed up.
type DumpDiskArgs struct {
	Project string
	Zone    string
	// Region is the zone's region, where the snapshot schedule lives.
	Region    string
	Disk      DiskConfig
	Snapshots SnapshotConfig
}

// NewDumpDisk declares (or, in external mode, describes) the dumps disk.
func NewDumpDisk(ctx *pulumi.Context, name string, cfg DumpDiskArgs, opts ...pulumi.ResourceOption) (*DumpDisk, error) {
	d := &DumpDisk{}
	if err := ctx.RegisterComponentResource("loklak-dumps:storage:DumpDisk", name, d, opts...); err != nil {
		return nil, err
	}
	handle := diskHandle(cfg.Project, cfg.Zone, cfg.Disk.Name)

	if !cfg.Disk.Mode.Managed() {
		d.Name = pulumi.String(cfg.Disk.Name).ToStringOutput()
		d.Zone = pulumi.String(cfg.Zone).ToStringOutput()
		d.SizeGB = pulumi.Int(cfg.Disk.SizeGB).ToIntOutput()
		d.Type = pulumi.String(cfg.Disk.Type).ToStringOutput()
		d.VolumeHandle = pulumi.String(handle).ToStringOutput()
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
		diskOpts = append(diskOpts, pulumi.Import(pulumi.ID(handle)))
	}
	// The logical name never follows config: renaming the disk (diskName) must be a replacement, which protect
	// refuses before anything changes, not a new resource plus the deletion of the old one, which the engine
	// would start creating before the protected delete fails. The alias carries stacks deployed when the
	// logical name was the disk's name.
	diskOpts = append(diskOpts, pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(cfg.Disk.Name)}}))
	disk, err := compute.NewDisk(ctx, "dump-disk", &compute.DiskArgs{
		Name:    pulumi.String(cfg.Disk.Name),
		Project: pulumi.String(cfg.Project),
		Zone:    pulumi.String(cfg.Zone),
		Size:    pulumi.Int(cfg.Disk.SizeGB),
		Type:    pulumi.String(cfg.Disk.Type),
		Labels:  pulumi.ToStringMap(cfg.Disk.Labels),
	}, diskOpts...)
	if err != nil {
		return nil, err
	}
	d.Disk = disk
	d.Name = disk.Name
	d.Zone = disk.Zone
	d.SizeGB = disk.Size
	d.Type = disk.Type.Elem()
	d.VolumeHandle = pulumi.All(disk.Project, disk.Zone, disk.Name).ApplyT(func(v []any) string {
		return diskHandle(v[0].(string), v[1].(string), v[2].(string))
	}).(pulumi.StringOutput)

	if cfg.Snapshots.Enabled() {
		if d.SnapshotPolicy, err = newSnapshotSchedule(ctx, cfg, disk, pulumi.Parent(d)); err != nil {
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
func newSnapshotSchedule(ctx *pulumi.Context, cfg DumpDiskArgs, disk *compute.Disk, parent pulumi.ResourceOption) (*compute.ResourcePolicy, error) {
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
	// Logical names that never follow config, as for the disk; aliases carry stacks that used policyName.
	const logical = "snapshot-schedule"
	formerly := pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(policyName)}})
	policy, err := compute.NewResourcePolicy(ctx, logical, &compute.ResourcePolicyArgs{
		Name: pulumi.String(policyName),
		// The disk's own project, from its outputs: the schedule is created only once the disk is there
		// (an import that fails leaves nothing behind).
		Project: disk.Project,
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
	}, parent, formerly,
		// Every change replaces the policy instead of updating it: this provider's update is a PATCH that
		// always carries guestFlush, which Compute Engine refuses whenever snapshotProperties is sent
		// (hashicorp/terraform-provider-google#20499, fixed only in pulumi-gcp v8). Deleting first keeps
		// the name, and the engine then deletes the attachment before the policy (Compute Engine refuses
		// to delete an attached policy) and attaches the new one after: the disk never holds two.
		pulumi.ReplaceOnChanges([]string{"*"}), pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}
	// Every input of the attachment forces a replacement anyway; delete-before-replace keeps the disk at
	// one schedule while it is swapped.
	_, err = compute.NewDiskResourcePolicyAttachment(ctx, logical, &compute.DiskResourcePolicyAttachmentArgs{
		Disk:    disk.Name,
		Name:    policy.Name,
		Project: disk.Project,
		Zone:    disk.Zone,
	}, parent, formerly, pulumi.DeleteBeforeReplace(true))
	return policy, err
}

// diskHandle is a zonal disk's ID as the PD CSI driver (volumeHandle), the GCP provider (ID) and Pulumi's
// import all spell it.
func diskHandle(project, zone, name string) string {
	return fmt.Sprintf("projects/%s/zones/%s/disks/%s", project, zone, name)
}
