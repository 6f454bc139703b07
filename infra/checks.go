package infra

import (
	"context"
	"fmt"
)

// CheckAgainstCluster refuses, before anything is declared, a valid config that the cluster as it is
// now would refuse halfway through an update, or that would make the stack create what it must only
// change. Every problem is a FieldError naming the key, the value and what is allowed; a non-nil error
// that is not a *ConfigError means the cluster could not be read.
//
//   - createNamespace false for the namespace the stack created: the engine would delete the Namespace it
//     no longer declares, and everything in it.
//   - createNamespace false with a namespace that does not exist: the NamespacePatch applies by
//     server-side apply, which creates a missing object, so the stack would create a namespace it does
//     not own and leave it behind, unlabelled, on destroy.
//   - diskSizeGb below the capacity of a PersistentVolume of the stack on the disk: the PV's capacity would
//     be lowered, then the API server refuses the claim's shrink (spec.resources.requests may only
//     grow), leaving the two apart. A managed disk cannot shrink either (Compute Engine refuses it).
//   - diskSizeGb changed at all in diskMode external: a larger claim makes GKE's volume resizer grow a
//     disk this stack does not manage, so the stack keeps the size it first recorded.
//   - a new clusterIdentifier while the cluster the kubeconfig names holds a PersistentVolume of the stack
//     made under another (recorded on it since 2026-11-30: older volumes get it at the next up): the provider's replacement would replace every object on the same cluster, and
//     the claim's delete-before-replace waits forever on the pod that still mounts it.
//   - a managed disk (create or adopt) that a PersistentVolume of the stack names but diskExists (asked
//     about the configured disk) says
//     Compute Engine no longer has: the disk was lost outside the stack, and after a refresh the engine
//     would create it again, empty (or from an old snapshot), under the unchanged volume and claim; in
//     adopt mode the import would fail. The volume is the sure sign the stack had the disk;
//     diskRecreateBlank says it should be created again anyway.
//
// The stack's volumes on the disk are found by its label and the disk's handle, not by name: a change
// of namespace renames them, and must not hide them.
func CheckAgainstCluster(ctx context.Context, cfg Config, cluster Cluster, diskExists func() (bool, error)) error {
	var problems []FieldError
	if !cfg.Namespace.Create {
		ns, err := cluster.Namespace(ctx, cfg.Namespace.Name)
		if err != nil {
			return err
		}
		if ns.CreatedByStack {
			problems = append(problems, FieldError{Key: "createNamespace", Value: "false", Allowed: fmt.Sprintf(
				"true while namespace %s is one a loklak-dumps stack created (it carries %s=%s): with false the stack would "+
					"stop declaring it, and the engine would delete it, with loklak's claim and Deployment in it", cfg.Namespace.Name, partOfLabel, partOf)})
		}
		if !ns.Exists {
			problems = append(problems, FieldError{Key: "namespace", Value: cfg.Namespace.Name, Allowed: fmt.Sprintf(
				"no such namespace in the cluster, and createNamespace is false, so the stack only labels an existing "+
					"namespace and never creates one. Check the name, create the namespace (kubectl create namespace %s), "+
					"or set createNamespace to true to let the stack create and own it", cfg.Namespace.Name)})
		}
	}

	// The stack's PersistentVolumes on this disk, whatever namespace named them: what the last up left.
	handle := cfg.VolumeHandle()
	volumes, err := cluster.VolumesOnDisk(ctx, handle)
	if err != nil {
		return err
	}
	for _, pv := range volumes {
		problems = append(problems, checkVolume(cfg, pv)...)
	}
	if len(volumes) > 0 && cfg.Disk.Mode.Managed() && !cfg.Disk.RecreateBlank {
		exists, err := diskExists()
		if err != nil {
			return err
		}
		if !exists {
			problems = append(problems, FieldError{Key: "diskName", Value: cfg.Disk.Name, Allowed: fmt.Sprintf(
				"a disk that exists: PersistentVolume %s names %s, which Compute Engine no longer has, and creating it again "+
					"would give loklak an empty disk (or, with diskSourceSnapshot, the snapshot's old contents) under the same "+
					"volume. Restore it from a snapshot (docs/restore.md), or set diskRecreateBlank to true for one up to "+
					"create it again anyway", volumes[0].Name, handle)})
		}
	}
	if len(problems) > 0 {
		return &ConfigError{Errors: problems}
	}
	return nil
}

// checkVolume refuses what one of the stack's PersistentVolumes on the disk says cannot be applied whole.
func checkVolume(cfg Config, pv Volume) []FieldError {
	var problems []FieldError
	if pv.ClusterIdentifier != "" && pv.ClusterIdentifier != cfg.Kube.ClusterIdentifier {
		problems = append(problems, FieldError{Key: "clusterIdentifier", Value: cfg.Kube.ClusterIdentifier, Allowed: fmt.Sprintf(
			"%s, the identifier the stack made its objects under on this cluster (PersistentVolume %s): a new one replaces "+
				"every Kubernetes object of the stack, and on the same cluster the claim's replacement waits forever on the pod "+
				"that holds it. Change it only with a kubeconfig for another cluster (README, \"Moving to another cluster\")",
			pv.ClusterIdentifier, pv.Name)})
	}
	size := int64(cfg.Disk.SizeGB)
	switch {
	case size < pv.CapacityGiB:
		problems = append(problems, FieldError{Key: "diskSizeGb", Value: fmt.Sprint(cfg.Disk.SizeGB), Allowed: fmt.Sprintf(
			"at least %d: PersistentVolume %s on this disk holds %dGi, and neither a claim nor a Compute Engine "+
				"disk can shrink (Kubernetes would refuse the claim after the volume had changed)", pv.CapacityGiB, pv.Name, pv.CapacityGiB)})
	case cfg.Disk.Mode == DiskExternal && size != pv.CapacityGiB:
		problems = append(problems, FieldError{Key: "diskSizeGb", Value: fmt.Sprint(cfg.Disk.SizeGB), Allowed: fmt.Sprintf(
			"%d, the size PersistentVolume %s records: in diskMode external the disk is managed elsewhere and "+
				"this stack never resizes it (a larger claim would make GKE's volume resizer grow it)", pv.CapacityGiB, pv.Name)})
	}
	return problems
}
