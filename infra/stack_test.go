package infra_test

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/recorder"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

const project = "loklak-dumps"

// Resource type tokens, as the engine sees them.
const (
	tDisk          = "gcp:compute/disk:Disk"
	tRegionDisk    = "gcp:compute/regionDisk:RegionDisk"
	tRegionAttach  = "gcp:compute/regionDiskResourcePolicyAttachment:RegionDiskResourcePolicyAttachment"
	tPolicy        = "gcp:compute/resourcePolicy:ResourcePolicy"
	tAttachment    = "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment"
	tK8sProvider   = "pulumi:providers:kubernetes"
	tNamespace     = "kubernetes:core/v1:Namespace"
	tStorageClass  = "kubernetes:storage.k8s.io/v1:StorageClass"
	tPV            = "kubernetes:core/v1:PersistentVolume"
	tPVC           = "kubernetes:core/v1:PersistentVolumeClaim"
	tDeployment    = "kubernetes:apps/v1:Deployment"
	tService       = "kubernetes:core/v1:Service"
	tNetworkPolicy = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
	tDumpDisk      = "loklak-dumps:storage:DumpDisk"
	tDumpVolume    = "loklak-dumps:storage:DumpVolume"
	tServer        = "loklak-dumps:app:Server"
	tAlertPolicy   = "gcp:monitoring/alertPolicy:AlertPolicy"
)

// runStack runs the real program on the real Pulumi.yaml defaults and Pulumi.<stack>.yaml, with overrides
// (an empty value unsets a key).
func runStack(t *testing.T, stack string, overrides map[string]string) (*recorder.Recorder, error) {
	t.Helper()
	_, values, err := stackconfig.Load("..", stack)
	if err != nil {
		t.Fatalf("load stack %s: %v", stack, err)
	}
	return recorder.Run(t, project, stack, values.With(overrides), recorder.Cluster{}.Program)
}

func mustRun(t *testing.T, stack string, overrides map[string]string) *recorder.Recorder {
	t.Helper()
	rec, err := runStack(t, stack, overrides)
	if err != nil {
		t.Fatalf("program failed: %v", err)
	}
	return rec
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantDeep(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func wantDependsOn(t *testing.T, r recorder.Resource, typ, name string) {
	t.Helper()
	if !slices.Contains(r.DependsOn, typ+"::"+name) {
		t.Errorf("%s does not depend on %s::%s through its inputs; depends on %v", r.Key(), typ, name, r.DependsOn)
	}
}

func wantParent(t *testing.T, rec *recorder.Recorder, r recorder.Resource, typ string) {
	t.Helper()
	p, ok := rec.ByURN(r.Parent)
	if !ok || p.Type != typ {
		t.Errorf("%s: parent %q, want a %s", r.Key(), r.Parent, typ)
	}
}

func TestDevStack(t *testing.T) {
	rec := mustRun(t, "dev", nil)
	const handle = "projects/loklak-server/zones/us-central1-a/disks/loklak-dev-data"

	t.Run("disk is created, protected and retained", func(t *testing.T) {
		d := rec.One(t, tDisk)
		want(t, "name", d.String("name"), "loklak-dev-data")
		want(t, "project", d.String("project"), "loklak-server")
		want(t, "zone", d.String("zone"), "us-central1-a")
		want(t, "size", d.Get("size"), any(float64(10)))
		want(t, "type", d.String("type"), "pd-standard")
		wantDeep(t, "labels", d.Get("labels"), any(map[string]any{"app": "loklak", "env": "dev"}))
		want(t, "protect", d.Protect, true)
		want(t, "retainOnDelete", d.RetainOnDelete, true)
		want(t, "import ID (create mode)", d.ImportID, "")
		wantParent(t, rec, d, tDumpDisk)
		want(t, "snapshot policies", len(rec.OfType(tPolicy))+len(rec.OfType(tAttachment)), 0)
	})

	t.Run("storage class is CSI, retained, expandable, and follows the disk", func(t *testing.T) {
		sc := rec.One(t, tStorageClass)
		want(t, "name", sc.String("metadata.name"), "loklak-dev-dump")
		want(t, "provisioner", sc.String("provisioner"), "pd.csi.storage.gke.io")
		want(t, "type parameter", sc.String("parameters.type"), "pd-standard")
		want(t, "reclaimPolicy", sc.String("reclaimPolicy"), "Retain")
		want(t, "allowVolumeExpansion", sc.Get("allowVolumeExpansion"), any(true))
		want(t, "volumeBindingMode", sc.String("volumeBindingMode"), "Immediate")
		wantDependsOn(t, sc, tDisk, "dump-disk")
		wantParent(t, rec, sc, tDumpVolume)
	})

	t.Run("persistent volume is exactly the disk, in its zone, for our claim", func(t *testing.T) {
		pv := rec.One(t, tPV)
		want(t, "name", pv.String("metadata.name"), "loklak-dev-dump")
		want(t, "csi.driver", pv.String("spec.csi.driver"), "pd.csi.storage.gke.io")
		want(t, "csi.volumeHandle", pv.String("spec.csi.volumeHandle"), handle)
		want(t, "csi.fsType", pv.String("spec.csi.fsType"), "ext4")
		want(t, "gcePersistentDisk (in-tree, removed)", pv.Get("spec.gcePersistentDisk"), nil)
		wantDeep(t, "accessModes", pv.Get("spec.accessModes"), any([]any{"ReadWriteOnce"}))
		want(t, "reclaim policy", pv.String("spec.persistentVolumeReclaimPolicy"), "Retain")
		want(t, "capacity", pv.String("spec.capacity.storage"), "10Gi")
		want(t, "storageClassName", pv.String("spec.storageClassName"), "loklak-dev-dump")
		term := "spec.nodeAffinity.required.nodeSelectorTerms.0.matchExpressions.0."
		want(t, "affinity key", pv.String(term+"key"), "topology.gke.io/zone")
		want(t, "affinity operator", pv.String(term+"operator"), "In")
		wantDeep(t, "affinity zones", pv.Get(term+"values"), any([]any{"us-central1-a"}))
		want(t, "claimRef.name", pv.String("spec.claimRef.name"), "dump")
		want(t, "claimRef.namespace", pv.String("spec.claimRef.namespace"), "loklak-dev")
		wantDependsOn(t, pv, tStorageClass, "dump")
		wantDependsOn(t, pv, tDisk, "dump-disk")
	})

	t.Run("claim binds to exactly that volume", func(t *testing.T) {
		pvc := rec.One(t, tPVC)
		want(t, "name", pvc.String("metadata.name"), "dump")
		want(t, "namespace", pvc.String("metadata.namespace"), "loklak-dev")
		// The volume's claimRef reserves it; naming it on the claim too costs a 15 s resync (issue 12).
		want(t, "volumeName", pvc.Get("spec.volumeName"), nil)
		wantDeep(t, "ignoreChanges (claims that named their volume keep it)", pvc.IgnoreChanges, []string{"spec.volumeName", "spec.selector"})
		// The selector reaches only the dumps volume, and no provisioner serves a claim with a selector.
		wantDeep(t, "selector", pvc.Get("spec.selector"), any(map[string]any{"matchLabels": map[string]any{"loklak.org/dumps-volume": "loklak-dev-dump"}}))
		pvLabels, _ := rec.One(t, tPV).Get("metadata.labels").(map[string]any)
		want(t, "the PV carries the selected label", pvLabels["loklak.org/dumps-volume"], any("loklak-dev-dump"))
		want(t, "storageClassName", pvc.String("spec.storageClassName"), "loklak-dev-dump")
		want(t, "request", pvc.String("spec.resources.requests.storage"), "10Gi")
		wantDeep(t, "accessModes", pvc.Get("spec.accessModes"), any([]any{"ReadWriteOnce"}))
		wantDependsOn(t, pvc, tPV, "dump")
		wantDependsOn(t, pvc, tNamespace, "namespace")
	})

	t.Run("deployment recreates one pod on the claim", func(t *testing.T) {
		dep := rec.One(t, tDeployment)
		want(t, "name", dep.String("metadata.name"), "loklak-server")
		want(t, "namespace", dep.String("metadata.namespace"), "loklak-dev")
		want(t, "replicas", dep.Get("spec.replicas"), any(float64(1)))
		want(t, "strategy", dep.String("spec.strategy.type"), "Recreate")
		want(t, "rollingUpdate", dep.Get("spec.strategy.rollingUpdate"), nil)
		want(t, "deleteBeforeReplace (never two pods across a replacement)", dep.DeleteBeforeReplace, true)
		pod := "spec.template.spec."
		c := pod + "containers.0."
		want(t, "image", dep.String(c+"image"), "loklak/loklak_server:latest-development")
		want(t, "claimName", dep.String(pod+"volumes.0.persistentVolumeClaim.claimName"), "dump")
		want(t, "volume name", dep.String(pod+"volumes.0.name"), "data")
		want(t, "mounted volume", dep.String(c+"volumeMounts.0.name"), "data")
		want(t, "mountPath", dep.String(c+"volumeMounts.0.mountPath"), "/loklak_server/data")
		want(t, "port", dep.Get(c+"ports.0.containerPort"), any(float64(9000)))
		for _, probe := range []string{"startupProbe", "readinessProbe"} {
			want(t, probe+" path", dep.String(c+probe+".httpGet.path"), "/api/status.json")
			want(t, probe+" port", dep.String(c+probe+".httpGet.port"), "http")
		}
		// Liveness is not readiness: a busy JVM that still accepts connections is slow, not dead.
		want(t, "liveness httpGet", dep.Get(c+"livenessProbe.httpGet"), nil)
		want(t, "liveness tcpSocket port", dep.String(c+"livenessProbe.tcpSocket.port"), "http")
		want(t, "liveness failureThreshold (2 min at 20 s)", dep.Get(c+"livenessProbe.failureThreshold"), any(float64(6)))
		// latest-development moves with every build: pulled on every start.
		want(t, "imagePullPolicy (tag)", dep.String(c+"imagePullPolicy"), "Always")
		// 300 s of start-up allowance at one probe a second: loklak is in the Service within a second
		// or so of answering.
		want(t, "startup failureThreshold", dep.Get(c+"startupProbe.failureThreshold"), any(float64(300)))
		want(t, "startup periodSeconds", dep.Get(c+"startupProbe.periodSeconds"), any(float64(1)))
		wantDeep(t, "env", dep.Get(c+"env"), any([]any{
			map[string]any{"name": "PORT", "value": "9000"},
			map[string]any{"name": "ENVXmx", "value": "512m"},
			map[string]any{"name": "dump_write_enabled", "value": "true"},
		}))
		wantDeep(t, "requests", dep.Get(c+"resources.requests"), any(map[string]any{"cpu": "250m", "memory": "1Gi", "ephemeral-storage": "1Gi"}))
		wantDeep(t, "limits", dep.Get(c+"resources.limits"), any(map[string]any{"cpu": "1", "memory": "1Gi", "ephemeral-storage": "4Gi"}))
		want(t, "automountServiceAccountToken", dep.Get(pod+"automountServiceAccountToken"), any(false))
		want(t, "seccomp", dep.String(pod+"securityContext.seccompProfile.type"), "RuntimeDefault")
		want(t, "allowPrivilegeEscalation", dep.Get(c+"securityContext.allowPrivilegeEscalation"), any(false))
		wantDeep(t, "dropped capabilities", dep.Get(c+"securityContext.capabilities.drop"), any([]any{"ALL"}))
		wantDependsOn(t, dep, tPVC, "dump")
		wantParent(t, rec, dep, tServer)
	})

	t.Run("service reaches the pods on HTTP", func(t *testing.T) {
		svc := rec.One(t, tService)
		want(t, "type", svc.String("spec.type"), "ClusterIP")
		want(t, "port", svc.Get("spec.ports.0.port"), any(float64(80)))
		want(t, "targetPort", svc.String("spec.ports.0.targetPort"), "http")
		wantDeep(t, "selector", svc.Get("spec.selector"), any(map[string]any{"app.kubernetes.io/name": "loklak-server"}))
		wantDependsOn(t, svc, tDeployment, "loklak-server")
		annotations, _ := svc.Get("metadata.annotations").(map[string]any)
		want(t, "skipAwait annotation", annotations["pulumi.com/skipAwait"], any("true"))
	})

	t.Run("only the HTTP port is admitted", func(t *testing.T) {
		np := rec.One(t, tNetworkPolicy)
		wantDeep(t, "podSelector", np.Get("spec.podSelector.matchLabels"), any(map[string]any{"app.kubernetes.io/name": "loklak-server"}))
		wantDeep(t, "policyTypes", np.Get("spec.policyTypes"), any([]any{"Ingress"}))
		wantDeep(t, "ingress", np.Get("spec.ingress"), any([]any{map[string]any{
			"ports": []any{map[string]any{"port": float64(9000), "protocol": "TCP"}},
		}}))
	})

	t.Run("namespace enforces Pod Security baseline, warns at restricted", func(t *testing.T) {
		ns := rec.One(t, tNamespace)
		want(t, "name", ns.String("metadata.name"), "loklak-dev")
		wantDeep(t, "labels", ns.Get("metadata.labels"), any(map[string]any{
			"app.kubernetes.io/part-of":          "loklak-dumps",
			"pod-security.kubernetes.io/enforce": "baseline",
			"pod-security.kubernetes.io/warn":    "restricted",
			"pod-security.kubernetes.io/audit":   "restricted",
		}))
	})

	t.Run("every Kubernetes resource uses the explicit provider", func(t *testing.T) {
		p := rec.One(t, tK8sProvider)
		for _, r := range rec.Resources() {
			if !r.Custom || !strings.HasPrefix(r.Type, "kubernetes:") {
				continue
			}
			if !strings.Contains(r.Provider, "::"+tK8sProvider+"::"+p.Name+"::") {
				t.Errorf("%s uses provider %q, want the explicit %s", r.Key(), r.Provider, p.Name)
			}
		}
		if n := len(rec.OfType(tNamespace)) + len(rec.OfType(tStorageClass)) + len(rec.OfType(tPV)) +
			len(rec.OfType(tPVC)) + len(rec.OfType(tDeployment)) + len(rec.OfType(tService)) +
			len(rec.OfType(tNetworkPolicy)); n != 7 {
			t.Errorf("Kubernetes objects = %d, want 7", n)
		}
	})

	t.Run("the provider uses the ambient kubeconfig and names its cluster", func(t *testing.T) {
		p := rec.One(t, tK8sProvider)
		want(t, "kubeconfig (unset: KUBECONFIG or ~/.kube/config)", p.Get("kubeconfig"), nil)
		want(t, "context (unset: the current one)", p.Get("context"), nil)
		want(t, "clusterIdentifier", p.String("clusterIdentifier"), "default")
	})

	t.Run("outputs", func(t *testing.T) {
		wantDeep(t, "outputs", rec.Outputs, map[string]any{
			"diskName":                  "loklak-dev-data",
			"diskId":                    handle,
			"diskUrn":                   "urn:pulumi:dev::loklak-dumps::loklak-dumps:storage:DumpDisk$gcp:compute/disk:Disk::dump-disk",
			"volumeHandle":              handle,
			"dumpArchiveBucket":         "loklak-server-dev-dumps",
			"dumpArchiveUrl":            "gs://loklak-server-dev-dumps",
			"dumpArchiverAccount":       "dumps-archiver-016acdbc@loklak-server.iam.gserviceaccount.com",
			"storageClassName":          "loklak-dev-dump",
			"persistentVolumeName":      "loklak-dev-dump",
			"persistentVolumeClaimName": "dump",
			"namespace":                 "loklak-dev",
			"deploymentName":            "loklak-server",
			"serviceName":               "loklak-server",
			"dumpUrl":                   "http://loklak-server.loklak-dev.svc.cluster.local:80/dump/",
			"dumpRotationCronJob":       "loklak-server-dump-rotation",
		})
	})
}

func TestProdStack(t *testing.T) {
	rec := mustRun(t, "prod", nil)
	const handle = "projects/loklak-server/zones/us-central1-a/disks/data-dump-disk"

	t.Run("the 2017 disk is adopted, never created", func(t *testing.T) {
		d := rec.One(t, tDisk)
		want(t, "import ID", d.ImportID, handle)
		want(t, "name", d.String("name"), "data-dump-disk")
		want(t, "size", d.Get("size"), any(float64(100)))
		want(t, "protect", d.Protect, true)
		want(t, "retainOnDelete", d.RetainOnDelete, true)
		wantDeep(t, "labels (must match the unlabelled 2017 disk)", d.Get("labels"), any(map[string]any{}))
	})

	t.Run("daily snapshots in the disk's region, kept after the disk", func(t *testing.T) {
		p := rec.One(t, tPolicy)
		want(t, "name", p.String("name"), "data-dump-disk-snapshots")
		want(t, "region", p.String("region"), "us-central1")
		sp := "snapshotSchedulePolicy."
		want(t, "daysInCycle", p.Get(sp+"schedule.dailySchedule.daysInCycle"), any(float64(1)))
		want(t, "startTime", p.String(sp+"schedule.dailySchedule.startTime"), "03:00")
		want(t, "retention", p.Get(sp+"retentionPolicy.maxRetentionDays"), any(float64(14)))
		want(t, "onSourceDiskDelete", p.String(sp+"retentionPolicy.onSourceDiskDelete"), "KEEP_AUTO_SNAPSHOTS")
		// No labels, so no snapshotProperties: an empty block is refused by the provider.
		want(t, "snapshotProperties", p.Get(sp+"snapshotProperties"), nil)
		// Created only once the disk is there: an import that fails leaves no policy behind.
		want(t, "policy project", p.String("project"), "loklak-server")
		wantDependsOn(t, p, tDisk, "dump-disk")
		a := rec.One(t, tAttachment)
		want(t, "attached disk", a.String("disk"), "data-dump-disk")
		want(t, "attached policy", a.String("name"), "data-dump-disk-snapshots")
		want(t, "attachment zone", a.String("zone"), "us-central1-a")
		wantDependsOn(t, a, tDisk, "dump-disk")
		wantDependsOn(t, a, tPolicy, "snapshot-schedule")
		// Changes replace the policy (the provider's PATCH fails, #20499), deleting first, and the
		// attachment with it.
		wantDeep(t, "policy replaceOnChanges", p.ReplaceOnChanges, []string{"*"})
		want(t, "policy deleteBeforeReplace", p.DeleteBeforeReplace, true)
		want(t, "attachment deleteBeforeReplace", a.DeleteBeforeReplace, true)
	})

	t.Run("namespace web is used, not owned", func(t *testing.T) {
		want(t, "Namespace resources", len(rec.OfType(tNamespace)), 0)
		patch := rec.One(t, "kubernetes:core/v1:NamespacePatch")
		want(t, "patched namespace", patch.String("metadata.name"), "web")
		wantDeep(t, "patched labels (Pod Security only)", patch.Get("metadata.labels"), any(map[string]any{
			"pod-security.kubernetes.io/enforce": "baseline",
			"pod-security.kubernetes.io/warn":    "restricted",
			"pod-security.kubernetes.io/audit":   "restricted",
		}))
		wantDependsOn(t, rec.One(t, tPVC), "kubernetes:core/v1:NamespacePatch", "namespace-labels")
		want(t, "PVC namespace", rec.One(t, tPVC).String("metadata.namespace"), "web")
		want(t, "PV claimRef namespace", rec.One(t, tPV).String("spec.claimRef.namespace"), "web")
	})

	t.Run("100Gi volume on the adopted disk", func(t *testing.T) {
		pv := rec.One(t, tPV)
		want(t, "volumeHandle", pv.String("spec.csi.volumeHandle"), handle)
		want(t, "capacity", pv.String("spec.capacity.storage"), "100Gi")
		want(t, "PVC request", rec.One(t, tPVC).String("spec.resources.requests.storage"), "100Gi")
	})

	t.Run("the load balancer keeps the adopted static address", func(t *testing.T) {
		a := rec.One(t, "gcp:compute/address:Address")
		want(t, "address name", a.String("name"), "loklak-dumps")
		want(t, "address region", a.String("region"), "us-central1")
		want(t, "address type", a.String("addressType"), "EXTERNAL")
		want(t, "import ID", a.ImportID, "projects/loklak-server/regions/us-central1/addresses/loklak-dumps")
		want(t, "protect", a.Protect, true)
		want(t, "retainOnDelete", a.RetainOnDelete, true)
		svc := rec.One(t, tService)
		wantDependsOn(t, svc, "gcp:compute/address:Address", "address")
		want(t, "loadBalancerIP (the address's output)", svc.String("spec.loadBalancerIP"), recorder.StaticAddressIP)
	})

	t.Run("server and load balancer", func(t *testing.T) {
		dep := rec.One(t, tDeployment)
		want(t, "strategy", dep.String("spec.strategy.type"), "Recreate")
		want(t, "heap", dep.String("spec.template.spec.containers.0.env.1.value"), "2g")
		svc := rec.One(t, tService)
		want(t, "service type", svc.String("spec.type"), "LoadBalancer")
		want(t, "LoadBalancer keeps the await that yields its address", svc.Get("metadata.annotations"), nil)
		want(t, "dumpUrl", rec.Outputs["dumpUrl"], any("http://"+recorder.LoadBalancerIP+":80/dump/"))
	})
}

// The volume alert exists only when a stack asks for it, and watches the loklak pod's dumps volume in
// the stack's namespace, with the threshold and the channels from config, in the disk's project.
func TestVolumeAlertFollowsConfig(t *testing.T) {
	if got := mustRun(t, "prod", nil).OfType(tAlertPolicy); len(got) != 0 {
		t.Errorf("prod declares %d alert policies without volumeAlertPercent, want none", len(got))
	}
	channels := "projects/loklak-server/notificationChannels/7, projects/loklak-server/notificationChannels/8"
	rec := mustRun(t, "prod", map[string]string{"volumeAlertPercent": "85", "volumeAlertChannels": channels})
	alert := rec.One(t, tAlertPolicy)
	want(t, "project", alert.String("project"), "loklak-server")
	want(t, "combiner", alert.String("combiner"), "OR")
	cond := "conditions.0.conditionThreshold."
	want(t, "filter", alert.String(cond+"filter"), `resource.type = "k8s_pod" AND resource.labels.namespace_name = "web" AND metric.type = "kubernetes.io/pod/volume/utilization" AND metric.labels.volume_name = "data"`)
	want(t, "comparison", alert.String(cond+"comparison"), "COMPARISON_GT")
	want(t, "threshold", alert.Get(cond+"thresholdValue"), any(0.85))
	wantDeep(t, "channels", alert.Get("notificationChannels"), any([]any{"projects/loklak-server/notificationChannels/7", "projects/loklak-server/notificationChannels/8"}))
	// The filter's volume_name is the pod's name for the claim's volume.
	dep := rec.One(t, tDeployment)
	want(t, "the Deployment's volume of the claim", dep.String("spec.template.spec.volumes.0.name"), "data")
	if _, ok := rec.Outputs["volumeAlertPolicy"]; !ok {
		t.Errorf("no volumeAlertPolicy stack output")
	}
}

// A claim Kubernetes bound to any volume but the dumps volume fails the update, naming both volumes,
// and loklak is never started on it.
func TestClaimBoundElsewhereFailsBeforeLoklakStarts(t *testing.T) {
	_, values, err := stackconfig.Load("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder.Recorder{StrayVolume: "pvc-0a1b2c-fresh-and-empty"}
	err = rec.Run(t, project, "dev", values, recorder.Cluster{}.Program)
	if err == nil {
		t.Fatal("the program accepted a claim bound to another volume")
	}
	for _, part := range []string{"loklak-dev/dump", "pvc-0a1b2c-fresh-and-empty", "not to loklak-dev-dump", "docs/recovery.md"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
	if deps := rec.OfType(tDeployment); len(deps) != 0 {
		t.Errorf("a Deployment was registered on the stray claim: %v", deps[0].Key())
	}
}

func TestExternalDiskDeclaresNoGCPResource(t *testing.T) {
	// Without the archive, whose bucket is a GCP resource in any disk mode.
	rec := mustRun(t, "dev", map[string]string{"diskMode": "external", "diskName": "shared-dumps", "diskSizeGb": "200", "archiveBucket": ""})
	for _, r := range rec.Resources() {
		if strings.HasPrefix(r.Type, "gcp:") {
			t.Errorf("external mode registered %s", r.Key())
		}
	}
	const handle = "projects/loklak-server/zones/us-central1-a/disks/shared-dumps"
	pv := rec.One(t, tPV)
	want(t, "volumeHandle", pv.String("spec.csi.volumeHandle"), handle)
	want(t, "capacity", pv.String("spec.capacity.storage"), "200Gi")
	want(t, "volumeHandle output", rec.Outputs["volumeHandle"], any(handle))
	if _, ok := rec.Outputs["diskId"]; ok {
		t.Errorf("external mode exports diskId %v; it has no managed disk", rec.Outputs["diskId"])
	}
}

func TestDiskProtectionCanBeTurnedOffOnlyExplicitly(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"diskProtect": "false", "diskRetainOnDelete": "false"})
	d := rec.One(t, tDisk)
	want(t, "protect", d.Protect, false)
	want(t, "retainOnDelete", d.RetainOnDelete, false)
}

func TestSnapshotSchedules(t *testing.T) {
	hourly := mustRun(t, "dev", map[string]string{"snapshotSchedule": "hourly", "snapshotHoursInCycle": "4", "snapshotStartTime": "01:00"})
	p := hourly.One(t, tPolicy)
	want(t, "hoursInCycle", p.Get("snapshotSchedulePolicy.schedule.hourlySchedule.hoursInCycle"), any(float64(4)))
	want(t, "hourly startTime", p.String("snapshotSchedulePolicy.schedule.hourlySchedule.startTime"), "01:00")
	want(t, "no daily", p.Get("snapshotSchedulePolicy.schedule.dailySchedule"), nil)

	// dev's disk labels go onto its snapshots.
	withLabels := mustRun(t, "dev", map[string]string{"snapshotSchedule": "daily"}).One(t, tPolicy)
	wantDeep(t, "snapshot labels", withLabels.Get("snapshotSchedulePolicy.snapshotProperties.labels"), any(map[string]any{"app": "loklak", "env": "dev"}))

	weekly := mustRun(t, "dev", map[string]string{"snapshotSchedule": "weekly", "snapshotDayOfWeek": "FRIDAY"})
	w := weekly.One(t, tPolicy)
	want(t, "day", w.String("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks.0.day"), "FRIDAY")
	want(t, "weekly startTime", w.String("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks.0.startTime"), "03:00")
}

// The engine waits for a rollout at least as long as the probes let the JVM start, plus room to schedule
// and pull, and never less than the provider's default ten minutes.
func TestRolloutWaitFollowsTheStartupAllowance(t *testing.T) {
	for startup, wait := range map[string]string{"1800": "35m0s", "600": "15m0s", "300": "10m0s", "30": "10m0s"} {
		dep := mustRun(t, "dev", map[string]string{"startupTimeoutSeconds": startup}).One(t, tDeployment)
		want(t, "create timeout for "+startup+" s", dep.CreateTimeout, wait)
		want(t, "update timeout for "+startup+" s", dep.UpdateTimeout, wait)
	}
}

func TestStartupAllowanceRoundsUp(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"startupTimeoutSeconds": "95"})
	got := rec.One(t, tDeployment).Get("spec.template.spec.containers.0.startupProbe.failureThreshold")
	want(t, "failureThreshold for 95 s", got, any(float64(95)))
}

// The zone reaches the disk, the volume handle, the PV's affinity and the snapshot region alike.
func TestZoneReachesEveryLink(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"zone": "europe-west4-b", "snapshotSchedule": "daily"})
	want(t, "disk zone", rec.One(t, tDisk).String("zone"), "europe-west4-b")
	pv := rec.One(t, tPV)
	want(t, "volumeHandle", pv.String("spec.csi.volumeHandle"), "projects/loklak-server/zones/europe-west4-b/disks/loklak-dev-data")
	wantDeep(t, "affinity zones", pv.Get("spec.nodeAffinity.required.nodeSelectorTerms.0.matchExpressions.0.values"), any([]any{"europe-west4-b"}))
	want(t, "snapshot region", rec.One(t, tPolicy).String("region"), "europe-west4")
}

// The cluster connection from config reaches the provider: kubeconfig content as a secret, the context,
// and the cluster identifier, the one input whose change replaces the provider.
func TestClusterConnectionReachesTheProvider(t *testing.T) {
	const kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\n"
	rec := mustRun(t, "dev", map[string]string{
		"kubeconfig": kubeconfig, "kubeContext": "gke_loklak-server_us-central1-a_web", "clusterIdentifier": "loklak-prod-cluster",
	})
	p := rec.One(t, tK8sProvider)
	want(t, "kubeconfig", p.String("kubeconfig"), kubeconfig)
	wantDeep(t, "secret inputs", p.SecretInputs, []string{"kubeconfig"})
	want(t, "context", p.String("context"), "gke_loklak-server_us-central1-a_web")
	want(t, "clusterIdentifier", p.String("clusterIdentifier"), "loklak-prod-cluster")

	// Empty or blank content is the same as unset: the ambient kubeconfig.
	p = mustRun(t, "dev", map[string]string{"kubeconfig": "  \n"}).One(t, tK8sProvider)
	want(t, "blank kubeconfig", p.Get("kubeconfig"), nil)
}

// No config value may name a resource: a renamed logical name is a new resource plus a deletion, and the
// engine creates the new one before a protected deletion fails. With fixed names a rename is an update or
// a replacement of the same resource, which protect refuses before anything changes. The former
// config-derived names stay as aliases, so stacks deployed with them keep their resources.
func TestLogicalNamesDoNotFollowConfig(t *testing.T) {
	names := func(rec *recorder.Recorder) map[string]string {
		out := map[string]string{}
		resources := rec.Resources()
		// Registration order is not part of a name (two IAM members register concurrently).
		slices.SortFunc(resources, func(a, b recorder.Resource) int { return strings.Compare(a.Name, b.Name) })
		for _, r := range resources {
			out[r.Type] += r.Name + " "
		}
		return out
	}
	base := mustRun(t, "prod", nil)
	renamed := mustRun(t, "prod", map[string]string{"diskName": "another-disk", "namespace": "elsewhere"})
	wantDeep(t, "logical names after renaming the disk and the namespace", names(renamed), names(base))
	want(t, "disk name (input)", renamed.One(t, tDisk).String("name"), "another-disk")

	// The type alias makes a blank disk turned regional a replacement that protect refuses, not a new disk.
	wantDeep(t, "disk aliases", base.One(t, tDisk).Aliases, []string{"data-dump-disk", tRegionDisk + "::dump-disk"})
	wantDeep(t, "policy aliases", base.One(t, tPolicy).Aliases, []string{"data-dump-disk-snapshots"})
	wantDeep(t, "attachment aliases", base.One(t, tAttachment).Aliases, []string{"data-dump-disk-snapshots"})
	wantDeep(t, "storage class aliases", base.One(t, tStorageClass).Aliases, []string{"web-dump"})
	wantDeep(t, "volume aliases", base.One(t, tPV).Aliases, []string{"web-dump"})
	dev := mustRun(t, "dev", nil)
	wantDeep(t, "namespace aliases", dev.One(t, tNamespace).Aliases, []string{"loklak-dev"})
}

// addressMode create reserves a new static address for the load balancer; none (dev's) reserves nothing.
func TestStaticAddressModes(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"serviceType": "LoadBalancer", "addressMode": "create", "addressName": "loklak-dev-ip"})
	a := rec.One(t, "gcp:compute/address:Address")
	want(t, "name", a.String("name"), "loklak-dev-ip")
	want(t, "project", a.String("project"), "loklak-server")
	want(t, "import ID (create)", a.ImportID, "")
	want(t, "protect", a.Protect, true)
	wantParent(t, rec, a, "loklak-dumps:network:ServiceAddress")
	want(t, "loadBalancerIP", rec.One(t, tService).String("spec.loadBalancerIP"), recorder.StaticAddressIP)
	want(t, "dumpUrl", rec.Outputs["dumpUrl"], any("http://"+recorder.LoadBalancerIP+":80/dump/"))

	dev := mustRun(t, "dev", nil)
	want(t, "addresses in dev", len(dev.OfType("gcp:compute/address:Address")), 0)
	want(t, "dev loadBalancerIP", dev.One(t, tService).Get("spec.loadBalancerIP"), nil)
}

// Every server and Service setting reaches what Kubernetes gets, with values that differ from each other
// and from the defaults, so a swapped or dropped setting shows.
func TestServerSettingsReachTheirFields(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{
		"replicas": "0", "dumpWriteEnabled": "false", "httpPort": "9100", "servicePort": "8080",
		"cpuRequest": "300m", "cpuLimit": "1500m", "memoryRequest": "1536Mi", "memoryLimit": "2Gi", "javaHeap": "1g",
		"serviceType": "NodePort", "ephemeralStorageRequest": "2Gi", "ephemeralStorageLimit": "8Gi",
		"image": "loklak/loklak_server@sha256:" + strings.Repeat("b", 64),
	})
	dep := rec.One(t, tDeployment)
	want(t, "replicas (0: stopped)", dep.Get("spec.replicas"), any(float64(0)))
	c := "spec.template.spec.containers.0."
	want(t, "container port", dep.Get(c+"ports.0.containerPort"), any(float64(9100)))
	want(t, "container port name", dep.String(c+"ports.0.name"), "http")
	env := map[string]any{}
	for _, e := range dep.Get(c + "env").([]any) {
		env[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
	}
	wantDeep(t, "env", env, map[string]any{"PORT": "9100", "ENVXmx": "1g", "dump_write_enabled": "false"})
	wantDeep(t, "resources", dep.Get(c+"resources"), any(map[string]any{
		"requests": map[string]any{"cpu": "300m", "memory": "1536Mi", "ephemeral-storage": "2Gi"},
		"limits":   map[string]any{"cpu": "1500m", "memory": "2Gi", "ephemeral-storage": "8Gi"},
	}))
	want(t, "imagePullPolicy (digest)", dep.String(c+"imagePullPolicy"), "IfNotPresent")
	want(t, "liveness port", dep.String(c+"livenessProbe.tcpSocket.port"), "http")
	for _, probe := range []string{"startupProbe", "readinessProbe"} {
		want(t, probe+" port (the named container port)", dep.String(c+probe+".httpGet.port"), "http")
		want(t, probe+" path", dep.String(c+probe+".httpGet.path"), "/api/status.json")
	}
	// Readiness asks every 3 s (so a started loklak joins the Service within 3 s) and gives up after
	// 30 s; liveness waits two minutes, so a slow but alive JVM is not restarted.
	want(t, "readiness period", dep.Get(c+"readinessProbe.periodSeconds"), any(float64(3)))
	want(t, "readiness failureThreshold", dep.Get(c+"readinessProbe.failureThreshold"), any(float64(10)))
	want(t, "readiness timeout", dep.Get(c+"readinessProbe.timeoutSeconds"), any(float64(5)))
	want(t, "liveness period", dep.Get(c+"livenessProbe.periodSeconds"), any(float64(20)))
	want(t, "liveness timeout", dep.Get(c+"livenessProbe.timeoutSeconds"), any(float64(10)))
	want(t, "startup period", dep.Get(c+"startupProbe.periodSeconds"), any(float64(1)))

	svc := rec.One(t, tService)
	want(t, "Service type", svc.String("spec.type"), "NodePort")
	want(t, "Service port", svc.Get("spec.ports.0.port"), any(float64(8080)))
	want(t, "Service targets the named port", svc.String("spec.ports.0.targetPort"), "http")
	wantDeep(t, "NodePort annotations", svc.Get("metadata.annotations"), any(map[string]any{"pulumi.com/skipAwait": "true"}))
	want(t, "NetworkPolicy port", rec.One(t, tNetworkPolicy).Get("spec.ingress.0.ports.0.port"), any(float64(9100)))
	want(t, "dumpUrl port", rec.Outputs["dumpUrl"], any("http://loklak-server.loklak-dev.svc.cluster.local:8080/dump/"))

	lb := mustRun(t, "dev", map[string]string{"serviceType": "LoadBalancer"}).One(t, tService)
	want(t, "LoadBalancer keeps the Service await (its address)", lb.Get("metadata.annotations"), nil)
}

// The weekly schedule takes the configured start time too, and the attachment lives in the disk's project.
func TestScheduleDetailsReachThePolicy(t *testing.T) {
	rec := mustRun(t, "dev", map[string]string{"snapshotSchedule": "weekly", "snapshotDayOfWeek": "TUESDAY", "snapshotStartTime": "22:00", "gcpProject": "another-project"})
	p := rec.One(t, tPolicy)
	want(t, "weekly startTime", p.String("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks.0.startTime"), "22:00")
	want(t, "weekly day", p.String("snapshotSchedulePolicy.schedule.weeklySchedule.dayOfWeeks.0.day"), "TUESDAY")
	a := rec.One(t, tAttachment)
	want(t, "attachment project", a.String("project"), "another-project")
	want(t, "attachment zone", a.String("zone"), "us-central1-a")
	want(t, "policy project", p.String("project"), "another-project")
}

// A regional disk: the RegionDisk in the stack's region with its two replica zones, the regional
// attachment for its schedule, and a Kubernetes side that says so (the StorageClass's replication type,
// the PV's regional handle, an affinity for both zones) under names of its own.
func TestRegionalDisk(t *testing.T) {
	rec := mustRun(t, "prod", map[string]string{
		"diskMode": "create", "diskName": "data-dump-regional", "diskSizeGb": "200",
		"diskReplicaZones": `["us-central1-a","us-central1-f"]`,
	})
	want(t, "zonal disks", len(rec.OfType(tDisk)), 0)
	d := rec.One(t, tRegionDisk)
	want(t, "name", d.String("name"), "data-dump-regional")
	want(t, "region", d.String("region"), "us-central1")
	wantDeep(t, "replicaZones", d.Get("replicaZones"), any([]any{"us-central1-a", "us-central1-f"}))
	want(t, "size", d.Get("size"), any(float64(200)))
	want(t, "protect", d.Protect, true)
	want(t, "retainOnDelete", d.RetainOnDelete, true)
	want(t, "logical name", d.Name, "dump-disk")
	wantDeep(t, "aliases (the zonal disk it may have been)", d.Aliases, []string{"data-dump-regional", tDisk + "::dump-disk"})

	want(t, "zonal attachments", len(rec.OfType(tAttachment)), 0)
	a := rec.One(t, tRegionAttach)
	want(t, "attached disk", a.String("disk"), "data-dump-regional")
	want(t, "attached policy", a.String("name"), "data-dump-regional-snapshots")
	want(t, "attachment region", a.String("region"), "us-central1")
	wantDependsOn(t, a, tRegionDisk, "dump-disk")
	want(t, "attachment deleted with the retained disk", a.DeletedWith, tRegionDisk+"::dump-disk")
	want(t, "policy deleted with the retained disk", rec.One(t, tPolicy).DeletedWith, tRegionDisk+"::dump-disk")

	// The tag is a short hash of the disk's handle and snapshot, so another disk never shares the names.
	tag := volumeTag("projects/loklak-server/regions/us-central1/disks/data-dump-regional", "")
	sc := rec.One(t, tStorageClass)
	want(t, "storage class", sc.String("metadata.name"), "web-dump"+tag)
	want(t, "replication-type", sc.String("parameters.replication-type"), "regional-pd")
	pv := rec.One(t, tPV)
	want(t, "volume", pv.String("metadata.name"), "web-dump"+tag)
	labels, _ := pv.Get("metadata.labels").(map[string]any)
	want(t, "volume label", labels[infra.VolumeLabel], any("web-dump"+tag))
	want(t, "volumeHandle", pv.String("spec.csi.volumeHandle"), "projects/loklak-server/regions/us-central1/disks/data-dump-regional")
	wantDeep(t, "affinity zones (names, not the provider's URLs)", pv.Get("spec.nodeAffinity.required.nodeSelectorTerms.0.matchExpressions.0.values"),
		any([]any{"us-central1-a", "us-central1-f"}))
	want(t, "claimRef", pv.String("spec.claimRef.name"), "dump"+tag)
	pvc := rec.One(t, tPVC)
	want(t, "claim", pvc.String("metadata.name"), "dump"+tag)
	want(t, "claim's logical name", pvc.Name, "dump"+tag)
	want(t, "mounted claim", rec.One(t, tDeployment).String("spec.template.spec.volumes.0.persistentVolumeClaim.claimName"), "dump"+tag)
	want(t, "diskId output", rec.Outputs["diskId"], any("projects/loklak-server/regions/us-central1/disks/data-dump-regional"))
}

// A disk made from a snapshot is a new resource beside the disk it replaces, never that disk replaced in
// place: its logical names and its Kubernetes objects' names follow the snapshot. The disk the stack lets
// go keeps its schedule (deleted with it, so nothing is called on it) only when it is retained.
func TestRestoredDisk(t *testing.T) {
	base := mustRun(t, "prod", nil)
	restore := map[string]string{"diskMode": "create", "diskName": "data-dump-disk-b", "zone": "us-central1-b", "diskSourceSnapshot": "data-dump-disk-20261130"}
	rec := mustRun(t, "prod", restore)
	d := rec.One(t, tDisk)
	want(t, "snapshot", d.String("snapshot"), "projects/loklak-server/global/snapshots/data-dump-disk-20261130")
	want(t, "zone", d.String("zone"), "us-central1-b")
	want(t, "import ID", d.ImportID, "")
	if old := base.One(t, tDisk).Name; d.Name == old || !strings.HasPrefix(d.Name, old+"-") {
		t.Errorf("logical name %q, want the blank disk's %q and a tag", d.Name, old)
	}
	want(t, "protect", d.Protect, true)
	wantDeep(t, "aliases (never the disk it restores)", d.Aliases, []string{"data-dump-disk-b"})
	if p, a := rec.One(t, tPolicy), rec.One(t, tAttachment); p.Name == base.One(t, tPolicy).Name || a.Name == base.One(t, tAttachment).Name {
		t.Errorf("schedule logical names %q, %q are the old disk's", p.Name, a.Name)
	}
	want(t, "new schedule", rec.One(t, tPolicy).String("name"), "data-dump-disk-b-snapshots")
	for _, typ := range []string{tStorageClass, tPV, tPVC} {
		if got, old := rec.One(t, typ).String("metadata.name"), base.One(t, typ).String("metadata.name"); got == old || !strings.HasPrefix(got, old+"-") {
			t.Errorf("%s name %q, want the old name %q and a tag", typ, got, old)
		}
	}
	want(t, "mounted claim", rec.One(t, tDeployment).String("spec.template.spec.volumes.0.persistentVolumeClaim.claimName"), rec.One(t, tPVC).String("metadata.name"))
	want(t, "volumeHandle", rec.One(t, tPV).String("spec.csi.volumeHandle"), "projects/loklak-server/zones/us-central1-b/disks/data-dump-disk-b")
	want(t, "claim", rec.One(t, tPVC).String("metadata.name"), "dump"+volumeTag("projects/loklak-server/zones/us-central1-b/disks/data-dump-disk-b", "projects/loklak-server/global/snapshots/data-dump-disk-20261130"))

	// Another snapshot, another disk: names of its own again.
	again := mustRun(t, "prod", map[string]string{"diskMode": "create", "diskName": "data-dump-disk-c", "zone": "us-central1-b", "diskSourceSnapshot": "data-dump-disk-b-20261201"})
	if again.One(t, tDisk).Name == d.Name || again.One(t, tPV).String("metadata.name") == rec.One(t, tPV).String("metadata.name") {
		t.Error("a second restore reuses the first one's names")
	}
	// A rename alone is not a restore: the same resources, which protect guards.
	renamed := mustRun(t, "prod", map[string]string{"diskMode": "create", "diskName": "data-dump-disk-x", "zone": "us-central1-b", "diskSourceSnapshot": "data-dump-disk-20261130"})
	want(t, "logical name after renaming a restored disk", renamed.One(t, tDisk).Name, d.Name)

	notRetained := mustRun(t, "dev", map[string]string{"snapshotSchedule": "daily", "diskRetainOnDelete": "false"})
	want(t, "attachment of a disk really deleted", notRetained.One(t, tAttachment).DeletedWith, "")
	want(t, "policy of a disk really deleted", notRetained.One(t, tPolicy).DeletedWith, "")
}

// volumeTag is what the Kubernetes objects of a regional or restored disk carry in their names.
func volumeTag(handle, snapshot string) string {
	sum := sha256.Sum256([]byte(handle + "@" + snapshot))
	return "-" + hex.EncodeToString(sum[:4])
}
