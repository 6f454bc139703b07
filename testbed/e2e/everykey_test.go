//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// keyChange is one config change tried on the running stack, and what must come of it.
type keyChange struct {
	// context is applied (and kept) first, where the key only matters with other keys set.
	context map[string]string
	// change is what is set, the key itself and any key it needs in the same up; JSON arrays are set
	// element by element, as `pulumi config set --path` does.
	change map[string]string
	// refused: the up must fail and change nothing. says is a fragment of its message.
	refused bool
	says    string
	// keep: the change stays for the keys after it (it cannot be undone: a disk only grows).
	keep bool
	// setup runs before the change (channels, snapshots the value names).
	setup func(t *testing.T, gce *gcp.Compute)
	// then checks what the cluster shows of an applied change, in the stack's namespace ns.
	then func(t *testing.T, ns string)
}

// rotation names the daily dump rotation's CronJob, ServiceAccount, Role and RoleBinding (infra.RotationName).
const rotation = "loklak-server-dump-rotation"

// notTried are the keys the test does not change, each with the reason.
var notTried = map[string]string{
	"diskSourceSnapshot": "a restore replaces the disk because the user asks for it, and needs `pulumi state unprotect` " +
		"of the old disk first (docs/restore.md); TestRestoreIntoAnotherZone and TestZonalToRegionalRunbook run that path " +
		"and assert the same invariants (one pod at a time, nothing called on the old disk, the old disk kept)",
}

const (
	everyChannel1 = "projects/loklak-server/notificationChannels/201"
	everyChannel2 = "projects/loklak-server/notificationChannels/202"
)

// everyKeyChanges gives every key of Pulumi.yaml another valid value; the keys run in sorted order, then
// the ones in runLast (a static address is protected and cannot be taken back out).
func everyKeyChanges(kubeconfig, kubeContext string) map[string]keyChange {
	daily := map[string]string{"snapshotSchedule": "daily"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := maps.Clone(m)
		out[k] = v
		return out
	}
	channels := func(t *testing.T, gce *gcp.Compute) {
		for _, name := range []string{everyChannel1, everyChannel2} {
			if err := gce.PutNotificationChannel(gcp.NotificationChannel{Name: name, Type: "email", DisplayName: "ops"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return map[string]keyChange{
		"gcpProject":              {change: map[string]string{"gcpProject": "loklak-other"}, refused: true, says: "marked for protection"},
		"zone":                    {change: map[string]string{"zone": "us-central1-b"}, refused: true, says: "marked for protection"},
		"region":                  {change: map[string]string{"region": "us-central1"}}, // the only valid value: zone's region, now explicit
		"diskMode":                {change: map[string]string{"diskMode": "adopt"}},     // the disk is in the state: the import is a no-op
		"diskName":                {change: map[string]string{"diskName": "loklak-every-renamed"}, refused: true, says: "marked for protection"},
		"diskSizeGb":              {change: map[string]string{"diskSizeGb": "20"}, keep: true},
		"diskType":                {change: map[string]string{"diskType": "pd-ssd"}, refused: true, says: "marked for protection"},
		"diskLabels":              {change: map[string]string{"diskLabels": `["app=loklak","env=dev","team=every"]`}},
		"diskReplicaZones":        {change: map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-b"]`, "diskSizeGb": "200"}, refused: true, says: "marked for protection"},
		"diskProtect":             {change: map[string]string{"diskProtect": "false"}},
		"diskRetainOnDelete":      {change: map[string]string{"diskRetainOnDelete": "false"}},
		"diskRecreateBlank":       {change: map[string]string{"diskRecreateBlank": "true"}},
		"snapshotSchedule":        {change: daily},
		"snapshotStartTime":       {change: with(daily, "snapshotStartTime", "05:00")},
		"snapshotHoursInCycle":    {change: map[string]string{"snapshotSchedule": "hourly", "snapshotHoursInCycle": "4"}},
		"snapshotDayOfWeek":       {change: map[string]string{"snapshotSchedule": "weekly", "snapshotDayOfWeek": "MONDAY"}},
		"snapshotRetentionDays":   {change: with(daily, "snapshotRetentionDays", "30")},
		"kubeconfig":              {change: map[string]string{"kubeconfig": kubeconfig}},
		"kubeContext":             {change: map[string]string{"kubeContext": kubeContext}},
		"clusterIdentifier":       {change: map[string]string{"clusterIdentifier": "loklak-every-cluster"}, refused: true, says: "loklak-dumps:clusterIdentifier"},
		"namespace":               {change: map[string]string{"namespace": "loklak-every-moved"}},
		"createNamespace":         {change: map[string]string{"createNamespace": "false"}, refused: true, says: "loklak-dumps:createNamespace"},
		"image":                   {change: map[string]string{"image": "loklak/loklak_server:every-key"}},
		"replicas":                {change: map[string]string{"replicas": "0"}},
		"httpPort":                {change: map[string]string{"httpPort": "9100"}},
		"javaHeap":                {change: map[string]string{"javaHeap": "256m"}},
		"cpuRequest":              {change: map[string]string{"cpuRequest": "100m"}},
		"cpuLimit":                {change: map[string]string{"cpuLimit": "2"}},
		"memoryRequest":           {change: map[string]string{"memoryRequest": "512Mi"}},
		"memoryLimit":             {change: map[string]string{"memoryLimit": "2Gi"}},
		"ephemeralStorageRequest": {change: map[string]string{"ephemeralStorageRequest": "2Gi"}},
		"ephemeralStorageLimit":   {change: map[string]string{"ephemeralStorageLimit": "8Gi"}},
		"startupTimeoutSeconds":   {change: map[string]string{"startupTimeoutSeconds": "600"}},
		"dumpWriteEnabled":        {change: map[string]string{"dumpWriteEnabled": "false"}},
		"serviceType":             {change: map[string]string{"serviceType": "NodePort"}},
		"servicePort":             {change: map[string]string{"servicePort": "8080"}},
		"volumeAlertPercent":      {change: map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": everyChannel1}, setup: channels},
		"volumeAlertChannels": {context: map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": everyChannel1},
			change: map[string]string{"volumeAlertChannels": everyChannel2}, setup: channels},
		// The committed dev stack archives: a new bucket name would replace its protected bucket.
		"archiveBucket":                 {change: map[string]string{"archiveBucket": "loklak-every-dumps"}, refused: true, says: "marked for protection"},
		"archiveColdAfterDays":          {change: map[string]string{"archiveColdAfterDays": "30"}},
		"archiveColdStorageClass":       {context: map[string]string{"archiveColdAfterDays": "30"}, change: map[string]string{"archiveColdStorageClass": "ARCHIVE"}},
		"archiveEndpoint":               {change: map[string]string{"archiveEndpoint": "http://127.0.0.1:4443/storage/v1/"}},
		"archiveIntervalSeconds":        {change: map[string]string{"archiveIntervalSeconds": "60"}},
		"archiveLocation":               {change: map[string]string{"archiveLocation": "US"}, refused: true, says: "marked for protection"},
		"archiveMinAgeMinutes":          {change: map[string]string{"archiveMinAgeMinutes": "5"}},
		"archivePruneAfterDays":         {change: map[string]string{"archivePruneAfterDays": "7"}},
		"archivePublic":                 {change: map[string]string{"archivePublic": "true", "archivePublicAccessPrevention": "inherited"}},
		"archivePublicAccessPrevention": {change: map[string]string{"archivePublicAccessPrevention": "inherited"}},
		"archiveRetentionDays":          {change: map[string]string{"archiveRetentionDays": "365"}},
		"archiveSoftDeleteDays":         {change: map[string]string{"archiveSoftDeleteDays": "0"}},
		"archiverEnabled":               {change: map[string]string{"archiverEnabled": "false"}},
		"archiverImage":                 {change: map[string]string{"archiverImage": "rclone/rclone:1.70.3"}},
		"addressMode":                   {change: map[string]string{"serviceType": "LoadBalancer", "addressMode": "create", "addressName": "loklak-every-ip"}, keep: true},
		"addressName":                   {change: map[string]string{"addressName": "loklak-every-ip-2"}, refused: true, says: "marked for protection"},
		// The daily restart of loklak (infra/rotation.go): off removes the CronJob and the identity it runs
		// as; the hour and the image reach the CronJob. No Job is waited for: the CronJob makes one only at
		// its hour, and on kwok nothing would run its kubectl.
		"dumpRotationEnabled": {change: map[string]string{"dumpRotationEnabled": "false"}, then: func(t *testing.T, ns string) {
			for _, kind := range []string{"cronjob", "rolebinding", "role", "serviceaccount"} {
				if exists(t, "-n", ns, kind, rotation) {
					t.Errorf("%s %s/%s is still there with dumpRotationEnabled false", kind, ns, rotation)
				}
			}
		}},
		"dumpRotationHourUtc": {change: map[string]string{"dumpRotationHourUtc": "4"}, then: func(t *testing.T, ns string) {
			cron := kubectlJSON(t, "-n", ns, "get", "cronjob", rotation)
			want(t, "schedule", cron.str("spec.schedule"), "0 4 * * *")
			want(t, "time zone", cron.str("spec.timeZone"), "Etc/UTC")
		}},
		"dumpRotationImage": {change: map[string]string{"dumpRotationImage": "registry.k8s.io/kubectl:v1.34.2"}, then: func(t *testing.T, ns string) {
			cron := kubectlJSON(t, "-n", ns, "get", "cronjob", rotation)
			pod := "spec.jobTemplate.spec.template.spec."
			want(t, "the restart's image", cron.str(pod+"initContainers.0.image"), "registry.k8s.io/kubectl:v1.34.2")
			want(t, "the wait's image", cron.str(pod+"containers.0.image"), "registry.k8s.io/kubectl:v1.34.2")
		}},
	}
}

var runLast = []string{"addressMode", "addressName"}

// Every key of Pulumi.yaml, changed one at a time on one running dev stack (on the stand-in), with a
// watch on every loklak pod in the cluster and the simulated project's calls: never more than one pod on
// the disk at any instant; the disk never replaced, recreated or detached from the stack's claim; a change
// that is refused (or fails) leaves every object as it was. A new key fails this test until it has a case.
func TestEveryKeyOnARunningStack(t *testing.T) {
	ctx := context.Background()
	project, err := stackconfig.Project(repoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	changes := everyKeyChanges(string(kubeconfig), currentContext(t, kubeconfig))
	var keys []string
	for k := range project.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = append(slices.DeleteFunc(keys, func(k string) bool { return slices.Contains(runLast, k) }), runLast...)

	const diskName = "loklak-dev-data"
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": "loklak-every"})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	handle := gcp.DiskPath("loklak-server", zone, diskName)
	diskID := simDisk(t, gce, "loklak-server", diskName).ID
	w := watchLoklakPods(t, "loklak-every", "loklak-every-moved")
	baseline := configOf(t, stack)

	for _, key := range keys {
		t.Run(key, func(t *testing.T) {
			if reason, ok := notTried[key]; ok {
				t.Logf("not changed here: %s", reason)
				return
			}
			c, ok := changes[key]
			if !ok {
				t.Fatalf("%s has no change here: give it another valid value and what must come of it, or say in notTried why it has none", key)
			}
			if c.setup != nil {
				c.setup(t, gce)
			}
			if c.context != nil {
				setValues(t, stack, c.context)
				if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
					t.Fatalf("the context %v: %v", c.context, err)
				}
			}
			w.window(t) // what happened before this change is not its doing
			before, calls := stackObjects(t), callCount(t, gce)
			setValues(t, stack, c.change)
			var out strings.Builder
			_, err := stack.Up(ctx, optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out))
			switch {
			case c.refused && err == nil:
				t.Errorf("%v was applied; it must be refused before anything changes", c.change)
			case c.refused:
				if !strings.Contains(out.String()+err.Error(), c.says) {
					t.Errorf("the refusal does not say %q:\n%s", c.says, lastLines(out.String(), 20))
				}
				wantCalls(t, gce, calls, nil)
				wantDeep(t, "the stack's objects after the refused change", stackObjects(t), before)
			case err != nil:
				t.Errorf("%v failed: %v\n%s", c.change, err, lastLines(out.String(), 30))
				wantDeep(t, "the stack's objects after the failed change", stackObjects(t), before)
			}
			want(t, "most loklak pods on the disk at once", w.window(t), 1)
			wantDiskKept(t, gce, stack, calls, handle, diskID)
			if c.then != nil && !c.refused && err == nil {
				c.then(t, configOf(t, stack)["loklak-dumps:namespace"].Value)
			}

			// Back to where the stack was, unless the change stays: the way back obeys the same rules.
			if c.keep && !c.refused {
				baseline = configOf(t, stack)
				return
			}
			restoreConfig(t, stack, baseline)
			if c.refused {
				return // nothing changed: only the config goes back
			}
			calls = callCount(t, gce)
			if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
				t.Fatalf("undoing %v: %v", c.change, err)
			}
			want(t, "most loklak pods on the disk at once, undoing it", w.window(t), 1)
			wantDiskKept(t, gce, stack, calls, handle, diskID)
		})
	}
}

// wantDiskKept: no Compute call created or deleted the disk since calls, it keeps its ID, and the
// stack's claim is bound to a volume on it.
func wantDiskKept(t *testing.T, gce *gcp.Compute, stack auto.Stack, calls int, handle, id string) {
	t.Helper()
	all, err := gce.Calls()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all[calls:] {
		if (c.Method == "POST" && strings.HasSuffix(c.Path, "/disks")) || (c.Method == "DELETE" && c.Path == handle) {
			t.Errorf("the disk was touched: %s %s", c.Method, c.Path)
		}
	}
	want(t, "disk ID", simDisk(t, gce, "loklak-server", path.Base(handle)).ID, id)
	ns := configOf(t, stack)["loklak-dumps:namespace"].Value
	claims := kubectlJSON(t, "-n", ns, "get", "pvc", "-l", "app.kubernetes.io/part-of=loklak-dumps")
	items, _ := claims.get("items").([]any)
	if len(items) != 1 {
		t.Fatalf("%d dumps claims in namespace %s, want 1", len(items), ns)
	}
	claim := object(items[0].(map[string]any))
	pv := kubectlJSON(t, "get", "pv", claim.str("spec.volumeName"))
	want(t, "the claim's volume's disk", pv.str("spec.csi.volumeHandle"), handle)
}

// stackObjects is every object the stack made in the cluster (its label), as uid, labels and spec (or a
// StorageClass's provisioner and parameters, a Role's rules, a RoleBinding's role and subjects): what a
// change would alter, without the status the controllers keep writing. The service accounts are the
// archiver's and the dump rotation's.
func stackObjects(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	list := kubectlJSON(t, "get", "namespace,storageclass,pv,pvc,deployment,service,networkpolicy,serviceaccount,role,rolebinding,cronjob",
		"--all-namespaces", "-l", "app.kubernetes.io/part-of=loklak-dumps")
	items, _ := list.get("items").([]any)
	for _, it := range items {
		o := object(it.(map[string]any))
		spec, err := json.Marshal([]any{o.get("metadata.uid"), o.get("metadata.labels"), o.get("spec"), o.get("provisioner"), o.get("parameters"),
			o.get("rules"), o.get("roleRef"), o.get("subjects")})
		if err != nil {
			t.Fatal(err)
		}
		out[o.str("kind")+"/"+o.str("metadata.namespace")+"/"+o.str("metadata.name")] = string(spec)
	}
	return out
}

// configOf is the stack's config as set (without the project prefix).
func configOf(t *testing.T, stack auto.Stack) auto.ConfigMap {
	t.Helper()
	all, err := stack.GetAllConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// setValues sets each key; a JSON array is set element by element, as `pulumi config set --path` does.
func setValues(t *testing.T, stack auto.Stack, values map[string]string) {
	t.Helper()
	ctx := context.Background()
	for key, value := range values {
		var elems []string
		if json.Unmarshal([]byte(value), &elems) != nil {
			secret := key == "kubeconfig"
			if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value, Secret: secret}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		_ = stack.RemoveConfig(ctx, key)
		for i, e := range elems {
			if err := stack.SetConfigWithOptions(ctx, key+"["+strconv.Itoa(i)+"]", auto.ConfigValue{Value: e}, &auto.ConfigOptions{Path: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// restoreConfig puts the stack's config back to was: keys set since are removed, the others set again.
func restoreConfig(t *testing.T, stack auto.Stack, was auto.ConfigMap) {
	t.Helper()
	ctx := context.Background()
	for key := range configOf(t, stack) {
		if _, ok := was[key]; !ok {
			if err := stack.RemoveConfig(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	for key, v := range was {
		setValues(t, stack, map[string]string{key: v.Value})
	}
}

// currentContext is the current-context of the control plane's kubeconfig (which gke writes as JSON).
func currentContext(t *testing.T, kubeconfig []byte) string {
	t.Helper()
	var c struct {
		CurrentContext string `json:"current-context"`
	}
	if err := json.Unmarshal(kubeconfig, &c); err != nil || c.CurrentContext == "" {
		t.Fatalf("the kubeconfig has no current-context (%v)", err)
	}
	return c.CurrentContext
}
