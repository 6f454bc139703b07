package infra

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	// CSIDriver is the Compute Engine PD CSI driver; the in-tree gcePersistentDisk plugin is gone since 1.28.
	CSIDriver = "pd.csi.storage.gke.io"
	// ZoneTopologyKey is the only topology key the PD CSI driver reports on nodes.
	ZoneTopologyKey = "topology.gke.io/zone"
	// ClaimName is the PVC's name, as in the 2017 setup (followed by the volume tag of a regional or
	// restored disk, see Config.VolumeTag).
	ClaimName = "dump"
	// ClusterIdentifierAnnotation on the PV records the clusterIdentifier the stack made its objects under,
	// so a new identifier on the same cluster is seen (and refused) before it replaces them all.
	ClusterIdentifierAnnotation = "loklak.org/cluster-identifier"
	// VolumeLabel marks the dumps PV; the claim selects on it, which keeps every other volume out of its
	// reach and forbids provisioning one for it.
	VolumeLabel = "loklak.org/dumps-volume"
	// DataPath is loklak_server's data directory (the Dockerfile's VOLUME); dumps live in data/dump/.
	DataPath = "/loklak_server/data"
	// partOfLabel and partOf mark every object the stack creates, and so a namespace it created.
	partOfLabel = "app.kubernetes.io/part-of"
	partOf      = "loklak-dumps"
	// dataVolumeName is the pod's name for the claim's volume, mounted at DataPath; GKE's volume metrics
	// carry it as volume_name.
	dataVolumeName = "data"
)

// volumeName is the cluster-wide name of an environment's StorageClass and PV: <environment>-dump, then
// the disk's tag (Config.VolumeTag).
func volumeName(environment, tag string) string { return environment + "-dump" + tag }

// DumpVolume is the Kubernetes side of the dumps disk: a StorageClass, a statically provisioned
// PersistentVolume for exactly that disk, and a claim bound to exactly that volume.
type DumpVolume struct {
	pulumi.ResourceState

	StorageClass *storagev1.StorageClass
	Volume       *corev1.PersistentVolume
	Claim        *corev1.PersistentVolumeClaim

	ClaimName  pulumi.StringOutput
	VolumeName pulumi.StringOutput
}

// DumpVolumeArgs wires the volume to the disk and the namespace by their outputs.
type DumpVolumeArgs struct {
	Disk      *DumpDisk
	Namespace pulumi.StringOutput
	// Environment names the cluster-wide StorageClass and PV (<environment>-dump): one per environment.
	Environment string
	// Tag follows every name, logical names included: one disk's objects are never another's.
	Tag string
	// ClusterIdentifier is recorded on the PV (ClusterIdentifierAnnotation).
	ClusterIdentifier string
}

// NewDumpVolume declares StorageClass -> PersistentVolume -> PersistentVolumeClaim for the dumps disk.
func NewDumpVolume(ctx *pulumi.Context, name string, args DumpVolumeArgs, opts ...pulumi.ResourceOption) (*DumpVolume, error) {
	v := &DumpVolume{}
	if err := ctx.RegisterComponentResource("loklak-dumps:storage:DumpVolume", name, v, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(v)
	name, claimName, logical := volumeName(args.Environment, args.Tag), ClaimName+args.Tag, "dump"+args.Tag
	// Logical names follow only the disk (the tag), never the namespace that names these objects; the
	// alias carries stacks deployed when they did.
	formerly := pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(name)}})
	disk := args.Disk
	capacity := pulumi.Sprintf("%dGi", disk.SizeGB)
	labels := pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("loklak-dumps")}

	// Retain: deleting a claim or a volume never deletes the disk. The class's type follows the disk's,
	// which also orders the class after the disk.
	parameters := pulumi.StringMap{"type": disk.Type}
	if disk.Regional {
		// The PD CSI driver's own word for a disk replicated in two zones.
		parameters["replication-type"] = pulumi.String("regional-pd")
	}
	sc, err := storagev1.NewStorageClass(ctx, logical, &storagev1.StorageClassArgs{
		Metadata:             &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: labels},
		Provisioner:          pulumi.String(CSIDriver),
		Parameters:           parameters,
		ReclaimPolicy:        pulumi.String("Retain"),
		AllowVolumeExpansion: pulumi.Bool(true),
		// Immediate, not WaitForFirstConsumer: the PV is static and pre-bound, and its node affinity already
		// pins the zone, so waiting buys nothing. With Immediate the provider waits for the claim to be
		// Bound before the Deployment is created; with WaitForFirstConsumer, pulumi-kubernetes before
		// #4181 (2026-02) waits on every PVC update for a Pending phase a bound claim never returns to,
		// so growing the disk timed out (pulumi/pulumi-kubernetes#4179; seen in this repo's e2e tests).
		VolumeBindingMode: pulumi.String("Immediate"),
	}, parent, formerly)
	if err != nil {
		return nil, err
	}

	volumeLabels := pulumi.StringMap{VolumeLabel: pulumi.String(name)}
	for k, v := range labels {
		volumeLabels[k] = v
	}
	pv, err := corev1.NewPersistentVolume(ctx, logical, &corev1.PersistentVolumeArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: volumeLabels,
			Annotations: pulumi.StringMap{ClusterIdentifierAnnotation: pulumi.String(args.ClusterIdentifier)}},
		Spec: &corev1.PersistentVolumeSpecArgs{
			Capacity:                      pulumi.StringMap{"storage": capacity},
			AccessModes:                   pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			PersistentVolumeReclaimPolicy: pulumi.String("Retain"),
			StorageClassName:              sc.Metadata.Name().Elem(),
			Csi: &corev1.CSIPersistentVolumeSourceArgs{
				Driver:       pulumi.String(CSIDriver),
				VolumeHandle: disk.VolumeHandle,
				FsType:       pulumi.String("ext4"),
			},
			// A disk attaches only to nodes in its zone (or, regional, in its two zones); this keeps the pod
			// there.
			NodeAffinity: &corev1.VolumeNodeAffinityArgs{
				Required: &corev1.NodeSelectorArgs{
					NodeSelectorTerms: corev1.NodeSelectorTermArray{&corev1.NodeSelectorTermArgs{
						MatchExpressions: corev1.NodeSelectorRequirementArray{&corev1.NodeSelectorRequirementArgs{
							Key:      pulumi.String(ZoneTopologyKey),
							Operator: pulumi.String("In"),
							Values:   disk.Zones,
						}},
					}},
				},
			},
			// Reserve the volume for our claim, so no other claim can take the dumps.
			ClaimRef: &corev1.ObjectReferenceArgs{
				Namespace: args.Namespace,
				Name:      pulumi.String(claimName),
			},
		},
	}, parent, formerly)
	if err != nil {
		return nil, err
	}

	// The volume's claimRef alone reserves it for this claim; the claim does not name its volume. With
	// both set, Kubernetes' PV controller races itself (its claim and volume workers both write the
	// volume's phase, one write fails, and the claim binds only at the next 15 s resync); with claimRef
	// alone it binds at once. What volumeName guaranteed, the rest keeps:
	//   - the claim takes its class and size from the volume's outputs, so the engine creates it only
	//     after the provider saw the volume Available: the controller knows the reserved volume, and a
	//     volume reserved for a claim wins over every other;
	//   - the selector matches only the dumps volume, and a claim with a selector is never provisioned
	//     (the CSI external-provisioner refuses it): no freshly made empty disk, ever;
	//   - boundToVolume fails the update if the claim still ends up bound elsewhere.
	// Stacks created when the claim named its volume keep that input and go without the selector: both
	// fields are immutable on a claim, and changing either would replace it.
	pvc, err := corev1.NewPersistentVolumeClaim(ctx, claimName, &corev1.PersistentVolumeClaimArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(claimName), Namespace: args.Namespace, Labels: labels},
		Spec: &corev1.PersistentVolumeClaimSpecArgs{
			AccessModes:      pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			StorageClassName: pv.Spec.StorageClassName(),
			Selector: &metav1.LabelSelectorArgs{
				MatchLabels: pulumi.StringMap{VolumeLabel: pv.Metadata.Name().Elem()},
			},
			Resources: &corev1.VolumeResourceRequirementsArgs{
				Requests: pulumi.StringMap{"storage": pv.Spec.Capacity().MapIndex(pulumi.String("storage"))},
			},
		},
	}, parent, pulumi.IgnoreChanges([]string{"spec.volumeName", "spec.selector"}))
	if err != nil {
		return nil, err
	}

	v.StorageClass, v.Volume, v.Claim = sc, pv, pvc
	v.VolumeName = pv.Metadata.Name().Elem()
	v.ClaimName = boundToVolume(ctx, pvc, v.VolumeName)
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{
		"storageClassName":          sc.Metadata.Name(),
		"persistentVolumeName":      v.VolumeName,
		"persistentVolumeClaimName": v.ClaimName,
	})
}

// boundToVolume is the claim's name once the claim is proven bound to volume: what the Deployment
// mounts, so loklak never starts on a claim that Kubernetes bound to any other volume (a freshly
// provisioned empty disk, or a stray volume reserved for the same claim). The provider returns a claim
// only once it is Bound, so in an update an unbound or misbound claim fails the update here, loudly.
// A preview has no binding to check yet.
func boundToVolume(ctx *pulumi.Context, claim *corev1.PersistentVolumeClaim, volume pulumi.StringOutput) pulumi.StringOutput {
	return pulumi.All(claim.Metadata.Namespace().Elem(), claim.Metadata.Name().Elem(), claim.Spec.VolumeName().Elem(), volume).
		ApplyT(func(v []any) (string, error) {
			namespace, name, boundTo, want := v[0].(string), v[1].(string), v[2].(string), v[3].(string)
			if boundTo == want || (boundTo == "" && ctx.DryRun()) {
				return name, nil
			}
			if boundTo == "" {
				return "", fmt.Errorf("PersistentVolumeClaim %s/%s is not bound; it must be bound to PersistentVolume %s, which holds the dumps", namespace, name, want)
			}
			return "", fmt.Errorf("PersistentVolumeClaim %s/%s is bound to PersistentVolume %s, not to %s, which holds the dumps; "+
				"loklak is not started on it. See docs/recovery.md, \"A claim bound to another volume\"", namespace, name, boundTo, want)
		}).(pulumi.StringOutput)
}
