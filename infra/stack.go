// Package infra declares the loklak dumps stack:
//
//	GCE disk -> StorageClass -> PersistentVolume -> PersistentVolumeClaim -> Deployment (+ Service)
//
// Every link takes the previous link's outputs as inputs, so the engine orders creates, updates and deletes
// from the data flow alone.
package infra

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-gcp/sdk/v7/go/gcp/compute"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Program is the whole stack with its outputs exported; main.go runs it under pulumi.Run.
func Program(ctx *pulumi.Context) error { return ProgramOn(NewKubeCluster)(ctx) }

// ProgramOn is Program checked against the cluster connect opens. The end-to-end tests run it inline
// through the Automation API, in their own process, so they connect with the KUBECONFIG the engine gets.
func ProgramOn(connect func(KubeConfig) (Cluster, error)) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error { return program(ctx, connect) }
}

func program(ctx *pulumi.Context, connect func(KubeConfig) (Cluster, error)) error {
	outputs, err := StackOn(ctx, connect)
	var invalid *ConfigError
	if errors.As(err, &invalid) {
		return invalid.report(ctx)
	}
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		ctx.Export(name, outputs[name])
	}
	return nil
}

// report logs each problem as an error diagnostic, the way the engine reports its own errors, and
// returns ErrInvalidConfig, which main turns into the exit status that tells the engine the failure is
// already reported.
func (e *ConfigError) report(ctx *pulumi.Context) error {
	for _, line := range e.Problems() {
		if err := ctx.Log.Error(line, nil); err != nil {
			return errors.Join(e, err) // the engine did not take it: say it all in the error instead
		}
	}
	return fmt.Errorf("%w: %d problem(s), each reported above; nothing was changed", ErrInvalidConfig, len(e.Errors))
}

// Stack is StackOn the cluster the config names, through client-go.
func Stack(ctx *pulumi.Context) (pulumi.Map, error) { return StackOn(ctx, NewKubeCluster) }

// StackOn validates all configuration, then checks it against the cluster that connect opens
// (CheckAgainstCluster), all before it registers anything; then it declares the stack and returns its
// outputs. Tests pass a connect that returns a fake Cluster.
func StackOn(ctx *pulumi.Context, connect func(KubeConfig) (Cluster, error)) (pulumi.Map, error) {
	cfg, err := ParseConfig(ctx.Project(), func(key string) (string, bool) {
		v, err := config.Try(ctx, key) // fails only when the key is unset
		return v, err == nil
	}, engineConfigKeys())
	if err != nil {
		return nil, err
	}
	cluster, err := connect(cfg.Kube)
	if err != nil {
		return nil, err
	}
	if err := CheckAgainstCluster(ctx.Context(), cfg, cluster, func() (bool, error) { return diskExists(ctx, cfg) }); err != nil {
		var invalid *ConfigError
		if errors.As(err, &invalid) {
			invalid.Project = ctx.Project()
		}
		return nil, err
	}
	return Deploy(ctx, cfg)
}

// engineConfigKeys lists the config keys the engine passed, from PULUMI_CONFIG: the variable through
// which the Go language host (and the SDK's mocks) hand a program its config, and which pulumi.Run
// reads itself. The SDK offers no way to list keys. Inline Automation API programs get their config
// over RPC instead, so there the list is empty and the check does not run.
func engineConfigKeys() []string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(os.Getenv("PULUMI_CONFIG")), &m); err != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// Deploy declares every resource for a valid Config and returns the stack outputs.
func Deploy(ctx *pulumi.Context, cfg Config) (pulumi.Map, error) {
	k8s, err := newKubernetesProvider(ctx, cfg.Kube)
	if err != nil {
		return nil, err
	}
	onCluster := pulumi.Provider(k8s)

	namespace, err := newNamespace(ctx, cfg.Namespace, onCluster)
	if err != nil {
		return nil, err
	}

	disk, err := NewDumpDisk(ctx, "dump-disk", DumpDiskArgs{
		Project: cfg.GCPProject, Zone: cfg.Zone, Region: cfg.Region, Disk: cfg.Disk, Snapshots: cfg.Snapshots,
	})
	if err != nil {
		return nil, err
	}

	volume, err := NewDumpVolume(ctx, "dump-volume", DumpVolumeArgs{
		Disk:        disk,
		Namespace:   namespace,
		Environment: cfg.Namespace.Name,
		Tag:         cfg.VolumeTag(),
		// On the PV, so that a new identifier on the same cluster is refused (CheckAgainstCluster).
		ClusterIdentifier: cfg.Kube.ClusterIdentifier,
	}, pulumi.Providers(k8s))
	if err != nil {
		return nil, err
	}

	var archive *DumpArchive
	if cfg.Archive.Enabled() {
		// Before the Kubernetes objects that use it: a change the engine refuses (the protected bucket's
		// rename or move) stops the update before the pod changes.
		archive, err = NewDumpArchive(ctx, "dump-archive", DumpArchiveArgs{
			Project: cfg.GCPProject, Archive: cfg.Archive,
			Namespace: cfg.Namespace.Name, KubernetesServiceAccount: ArchiverKubernetesServiceAccount,
		})
		if err != nil {
			return nil, err
		}
	}

	serverArgs := ServerArgs{
		Namespace: namespace,
		ClaimName: volume.ClaimName,
		Config:    cfg.Server,
		Service:   cfg.Service,
	}
	if cfg.Archive.Copying() {
		serverArgs.Archiver = &ArchiverArgs{BucketName: archive.BucketName, Config: cfg.Archive}
		serverArgs.ArchiverAccountEmail = archive.AccountEmail
	}
	if cfg.Address.Mode != AddressNone {
		address, err := NewServiceAddress(ctx, "service-address", cfg.Address, cfg.GCPProject, cfg.Region)
		if err != nil {
			return nil, err
		}
		serverArgs.LoadBalancerIP = address.IP
	}
	server, err := NewServer(ctx, "server", serverArgs, pulumi.Providers(k8s))
	if err != nil {
		return nil, err
	}
	var rotation *DumpRotation

	if cfg.Rotation.Enabled {
		rotation, err = NewDumpRotation(ctx, "dump-rotation", DumpRotationArgs{
			Namespace:  namespace,
			Deployment: server.Deployment.Metadata.Name().Elem(),
			Labels: pulumi.StringMap{
				"app.kubernetes.io/name":    pulumi.String(RotationName),
				"app.kubernetes.io/part-of": pulumi.String("loklak-dumps"),
			},
			Config:                cfg.Rotation,
			StartupTimeoutSeconds: cfg.Server.StartupTimeoutSeconds,
		}, pulumi.Providers(k8s))
		if err != nil {
			return nil, err
		}
	}

	outputs := pulumi.Map{
		"diskName":                  disk.Name,
		"volumeHandle":              disk.VolumeHandle,
		"storageClassName":          volume.StorageClass.Metadata.Name().Elem(),
		"persistentVolumeName":      volume.VolumeName,
		"persistentVolumeClaimName": volume.ClaimName,
		"namespace":                 namespace,
		"deploymentName":            server.Deployment.Metadata.Name().Elem(),
		"serviceName":               server.Service.Metadata.Name().Elem(),
		"dumpUrl":                   server.DumpURL,
	}
	if rotation != nil {
		outputs["dumpRotationCronJob"] = rotation.CronJob.Metadata.Name().Elem()
	}
	if disk.Disk != nil {
		outputs["diskId"] = disk.Disk.ID().ToStringOutput()
		// What `pulumi state unprotect` takes when a restore lets this disk leave the stack.
		outputs["diskUrn"] = disk.Disk.URN().ToStringOutput()
	}
	if archive != nil {
		outputs["dumpArchiveUrl"] = archive.URL
		outputs["dumpArchiveBucket"] = archive.BucketName
		if cfg.Archive.Public {
			outputs["dumpArchivePublicUrl"] = archive.PublicURL
		}
		if cfg.Archive.Copying() {
			outputs["dumpArchiverAccount"] = archive.AccountEmail
		}
	}
	if cfg.Alert.Enabled() {
		alert, err := NewVolumeAlert(ctx, "volume-alert", VolumeAlertArgs{Project: cfg.GCPProject, Namespace: namespace, Alert: cfg.Alert})
		if err != nil {
			return nil, err
		}
		outputs["volumeAlertPolicy"] = alert.Name
	}
	return outputs, nil
}

// newKubernetesProvider builds the one provider every Kubernetes resource uses: never the ambient default.
// With no kubeconfig in config it reads KUBECONFIG or ~/.kube/config, as kubectl does. clusterIdentifier
// keeps a kubeconfig change (a rotated credential or address) from replacing the provider and with it every
// object on the cluster.
func newKubernetesProvider(ctx *pulumi.Context, cfg KubeConfig) (*kubernetes.Provider, error) {
	args := &kubernetes.ProviderArgs{ClusterIdentifier: pulumi.String(cfg.ClusterIdentifier)}
	if cfg.Kubeconfig != "" {
		// A secret, so neither the state nor the preview shows it in clear.
		args.Kubeconfig = pulumi.ToSecret(pulumi.String(cfg.Kubeconfig)).(pulumi.StringOutput)
	}
	if cfg.Context != "" {
		args.Context = pulumi.String(cfg.Context)
	}
	return kubernetes.NewProvider(ctx, "cluster", args)
}

// podSecurityLabels are the Pod Security Admission labels of the loklak namespace: enforce baseline, the
// strictest level the loklak image is known to run under (it has no USER and runs as root, which restricted
// forbids); warn and audit at restricted so the gap stays visible.
func podSecurityLabels() pulumi.StringMap {
	return pulumi.StringMap{
		"pod-security.kubernetes.io/enforce": pulumi.String("baseline"),
		"pod-security.kubernetes.io/warn":    pulumi.String("restricted"),
		"pod-security.kubernetes.io/audit":   pulumi.String("restricted"),
	}
}

// newNamespace declares the namespace with its Pod Security labels. When the stack must not own it (the
// 2017 `web`, which may hold other things), it only patches those labels onto it by server-side apply
// under its own field manager: a destroy then removes the labels, never the namespace.
func newNamespace(ctx *pulumi.Context, cfg NamespaceConfig, opts ...pulumi.ResourceOption) (pulumi.StringOutput, error) {
	if !cfg.Create {
		patch, err := corev1.NewNamespacePatch(ctx, "namespace-labels", &corev1.NamespacePatchArgs{
			Metadata: &metav1.ObjectMetaPatchArgs{Name: pulumi.String(cfg.Name), Labels: podSecurityLabels()},
		}, opts...)
		if err != nil {
			return pulumi.StringOutput{}, err
		}
		// The namespace's name from the patch's outputs: nothing lands in it before its labels do.
		return patch.Metadata.Name().Elem(), nil
	}
	labels := podSecurityLabels()
	labels[partOfLabel] = pulumi.String(partOf) // the mark of a namespace the stack created (CheckAgainstCluster)
	// A logical name that never follows config; the alias carries stacks that used the namespace's name.
	opts = append(opts, pulumi.Aliases([]pulumi.Alias{{Name: pulumi.String(cfg.Name)}}))
	ns, err := corev1.NewNamespace(ctx, "namespace", &corev1.NamespaceArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(cfg.Name), Labels: labels},
	}, opts...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	return ns.Metadata.Name().Elem(), nil
}

// diskExists asks Compute Engine, through the GCP provider's data source, whether the configured disk
// exists. The provider's data sources fail with "<id> not found" for a missing one
// (terraform-provider-google: `if d.Id() == "" { return fmt.Errorf("%s not found", id) }`).
func diskExists(ctx *pulumi.Context, cfg Config) (bool, error) {
	var err error
	if cfg.Disk.Regional() {
		_, err = compute.LookupRegionDisk(ctx, &compute.LookupRegionDiskArgs{
			Name: cfg.Disk.Name, Project: &cfg.GCPProject, Region: &cfg.Region,
		})
	} else {
		_, err = compute.LookupDisk(ctx, &compute.LookupDiskArgs{Name: cfg.Disk.Name, Project: &cfg.GCPProject, Zone: &cfg.Zone})
	}
	switch {
	case err == nil:
		return true, nil
	case strings.Contains(err.Error(), cfg.VolumeHandle()+" not found"):
		return false, nil
	default:
		return false, fmt.Errorf("reading disk %s: %w", cfg.VolumeHandle(), err)
	}
}
