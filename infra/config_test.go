package infra_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
)

// Each bad value must fail the program before it registers anything, with a message that names the key,
// the value as given and what is allowed.
func TestBadConfigIsRefusedBeforeAnythingIsRegistered(t *testing.T) {
	cases := []struct {
		name      string
		overrides map[string]string
		key       string // the key the message must name
		value     string // the value the message must quote
		allowed   string // a fragment of what is allowed
	}{
		{"zone format", map[string]string{"zone": "uscentral1a"}, "zone", "uscentral1a", "zone such as us-central1-a"},
		{"region of another zone", map[string]string{"region": "europe-west1"}, "region", "europe-west1", `region of zone "us-central1-a", which is "us-central1"`},
		{"region format", map[string]string{"region": "central"}, "region", "central", "region such as us-central1"},
		{"project id", map[string]string{"gcpProject": "My_Project"}, "gcpProject", "My_Project", "Google Cloud project ID"},
		{"missing project", map[string]string{"gcpProject": ""}, "gcpProject", "", "is required"},
		{"disk too small", map[string]string{"diskSizeGb": "5"}, "diskSizeGb", "5", "from 10 to 65536"},
		{"disk too large", map[string]string{"diskSizeGb": "70000"}, "diskSizeGb", "70000", "from 10 to 65536"},
		{"disk size not a number", map[string]string{"diskSizeGb": "ten"}, "diskSizeGb", "ten", "an integer"},
		{"disk type", map[string]string{"diskType": "pd-extreme"}, "diskType", "pd-extreme", "pd-standard, pd-balanced, pd-ssd"},
		{"disk mode", map[string]string{"diskMode": "import"}, "diskMode", "import", "create, adopt, external"},
		{"disk name", map[string]string{"diskName": "Data_Dump"}, "diskName", "Data_Dump", "Compute Engine disk name"},
		{"missing disk name", map[string]string{"diskName": ""}, "diskName", "", "is required"},
		{"disk label", map[string]string{"diskLabels": `["Env=dev"]`}, "diskLabels", "Env=dev", `"key=value"`},
		{"disk labels not a list", map[string]string{"diskLabels": `env=dev`}, "diskLabels", "env=dev", "a list"},
		{"protect not boolean", map[string]string{"diskProtect": "yes"}, "diskProtect", "yes", "true or false"},
		{"one replica zone", map[string]string{"diskReplicaZones": `["us-central1-a"]`, "diskSizeGb": "200"}, "diskReplicaZones", `["us-central1-a"]`, `two distinct zones of the stack's region "us-central1"`},
		{"the same replica zone twice", map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-a"]`, "diskSizeGb": "200"}, "diskReplicaZones", `["us-central1-a","us-central1-a"]`, "two distinct zones"},
		{"a replica zone of another region", map[string]string{"diskReplicaZones": `["us-central1-a","us-east1-b"]`, "diskSizeGb": "200"}, "diskReplicaZones", `["us-central1-a","us-east1-b"]`, `region "us-central1"`},
		{"three replica zones", map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-b","us-central1-c"]`, "diskSizeGb": "200"}, "diskReplicaZones", `["us-central1-a","us-central1-b","us-central1-c"]`, "two distinct zones"},
		{"replica zones not a list", map[string]string{"diskReplicaZones": `us-central1-a,us-central1-b`, "diskSizeGb": "200"}, "diskReplicaZones", `us-central1-a,us-central1-b`, "two distinct zones"},
		{"regional pd-standard too small", map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-b"]`, "diskSizeGb": "199"}, "diskSizeGb", "199", "at least 200 for a regional pd-standard disk"},
		{"snapshot reference", map[string]string{"diskSourceSnapshot": "projects/loklak-server/snapshots/s1"}, "diskSourceSnapshot", "projects/loklak-server/snapshots/s1", "projects/PROJECT/global/snapshots/NAME"},
		{"snapshot name", map[string]string{"diskSourceSnapshot": "Snap_1"}, "diskSourceSnapshot", "Snap_1", "a snapshot's name"},
		{"a restore that would delete the old disk", map[string]string{"diskSourceSnapshot": "s1", "diskRetainOnDelete": "false"}, "diskRetainOnDelete", "false", "must be true when diskSourceSnapshot is set"},
		{"a snapshot into an adopted disk", map[string]string{"diskMode": "adopt", "diskSourceSnapshot": "s1"}, "diskMode", "adopt", `must be "create" when diskSourceSnapshot is set`},
		{"a namespace too long for the volume's name", map[string]string{"namespace": strings.Repeat("n", 63)}, "namespace", strings.Repeat("n", 63), "must be at most 58 characters: it names the PersistentVolume"},
		{"a namespace too long for a restored disk's volume", map[string]string{"diskSourceSnapshot": "s1", "namespace": strings.Repeat("n", 50)}, "namespace", strings.Repeat("n", 50), "must be at most 49 characters with a regional or restored disk"},
		{"schedule", map[string]string{"snapshotSchedule": "monthly"}, "snapshotSchedule", "monthly", "none, hourly, daily, weekly"},
		{"snapshot start", map[string]string{"snapshotSchedule": "daily", "snapshotStartTime": "03:30"}, "snapshotStartTime", "03:30", "HH:00"},
		{"snapshot retention", map[string]string{"snapshotSchedule": "daily", "snapshotRetentionDays": "0"}, "snapshotRetentionDays", "0", "from 1 to 3650"},
		{"snapshot weekday", map[string]string{"snapshotSchedule": "weekly", "snapshotDayOfWeek": "Funday"}, "snapshotDayOfWeek", "Funday", "MONDAY"},
		{"snapshot hours", map[string]string{"snapshotSchedule": "hourly", "snapshotHoursInCycle": "24"}, "snapshotHoursInCycle", "24", "from 1 to 23"},
		{"snapshots of an external disk", map[string]string{"diskMode": "external", "snapshotSchedule": "daily"}, "snapshotSchedule", "daily", "managed elsewhere"},
		{"namespace", map[string]string{"namespace": "Loklak"}, "namespace", "Loklak", "DNS-1123"},
		{"two replicas", map[string]string{"replicas": "2"}, "replicas", "2", "ReadWriteOnce"},
		{"missing image", map[string]string{"image": ""}, "image", "", "is required"},
		{"untagged image", map[string]string{"image": "loklak/loklak_server"}, "image", "loklak/loklak_server", "neither tag nor digest"},
		{"latest image", map[string]string{"image": "loklak/loklak_server:latest"}, "image", "loklak/loklak_server:latest", ":latest"},
		{"bucket name with capitals", map[string]string{"archiveBucket": "Loklak-Dev-Dumps"}, "archiveBucket", "Loklak-Dev-Dumps", "Cloud Storage bucket name"},
		{"bucket name ending with _", map[string]string{"archiveBucket": "loklak-dumps_"}, "archiveBucket", "loklak-dumps_", "starting and ending with a letter or digit"},
		{"bucket name too short", map[string]string{"archiveBucket": "ld"}, "archiveBucket", "ld", "3 to 63 characters"},
		{"bucket name of 64 characters", map[string]string{"archiveBucket": strings.Repeat("a", 64)}, "archiveBucket", strings.Repeat("a", 64), "at most 63 characters without dots"},
		{"bucket name an IP address", map[string]string{"archiveBucket": "192.168.5.4"}, "archiveBucket", "192.168.5.4", "not an IP address"},
		{"bucket name with goog", map[string]string{"archiveBucket": "goog-dumps"}, "archiveBucket", "goog-dumps", `not starting with "goog"`},
		{"bucket name with g00gle", map[string]string{"archiveBucket": "loklak-g00gle-dumps"}, "archiveBucket", "loklak-g00gle-dumps", `"google"`},
		{"bucket name over 222 with dots", map[string]string{"archiveBucket": strings.Repeat("a.", 112) + "a"}, "archiveBucket", strings.Repeat("a.", 112) + "a", "222 with dots"},
		{"pruning without an archive", map[string]string{"archiveBucket": "", "archivePruneAfterDays": "7"}, "archivePruneAfterDays", "7", "without an archive"},
		{"public without an archive", map[string]string{"archiveBucket": "", "archivePublic": "true"}, "archivePublic", "true", "without an archive"},
		{"pruning with the archiver off", map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePruneAfterDays": "7", "archiverEnabled": "false"}, "archivePruneAfterDays", "7", "nothing copies"},
		{"pruning before the copy's min age", map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePruneAfterDays": "1", "archiveMinAgeMinutes": "10080"}, "archivePruneAfterDays", "1", "at least archiveMinAgeMinutes (10080) in days"},
		{"pruning after too many days", map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePruneAfterDays": "3651"}, "archivePruneAfterDays", "3651", "from 0 to 3650"},
		{"a bad archive value waits for no bucket", map[string]string{"archiveBucket": "", "archiveLocation": "nowhere"}, "archiveLocation", "nowhere", "Cloud Storage location"},
		{"an endpoint without /storage/v1/", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveEndpoint": "http://10.0.0.1:4443/"}, "archiveEndpoint", "http://10.0.0.1:4443/", "ending in /storage/v1/"},
		{"public with public access prevention enforced", map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePublic": "true"}, "archivePublicAccessPrevention", "enforced", `must be "inherited" when archivePublic is true`},
		{"public access prevention", map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePublicAccessPrevention": "on"}, "archivePublicAccessPrevention", "on", "enforced, inherited"},
		{"bucket location", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveLocation": "us central"}, "archiveLocation", "us central", "Cloud Storage location"},
		{"archiver image latest", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiverImage": "rclone/rclone:latest"}, "archiverImage", "rclone/rclone:latest", ":latest"},
		{"archiver image untagged", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiverImage": "rclone/rclone"}, "archiverImage", "rclone/rclone", "neither tag nor digest"},
		{"min age 0", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveMinAgeMinutes": "0"}, "archiveMinAgeMinutes", "0", "from 1 to 10080"},
		{"interval too short", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveIntervalSeconds": "5"}, "archiveIntervalSeconds", "5", "from 10 to 86400"},
		{"cold storage class", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveColdStorageClass": "FAST"}, "archiveColdStorageClass", "FAST", "NEARLINE, COLDLINE, ARCHIVE"},
		{"retention too long", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveRetentionDays": "24856"}, "archiveRetentionDays", "24856", "from 0 to 24855"},
		{"soft delete of 3 days", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveSoftDeleteDays": "3"}, "archiveSoftDeleteDays", "3", "0 (soft delete off) or 7 to 90"},
		{"soft delete of 91 days", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveSoftDeleteDays": "91"}, "archiveSoftDeleteDays", "91", "0 (soft delete off) or 7 to 90"},
		{"endpoint", map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveEndpoint": "localhost:4443"}, "archiveEndpoint", "localhost:4443", "JSON API base URL"},
		{"image reference", map[string]string{"image": "Loklak Server:1"}, "image", "Loklak Server:1", "pinned by tag or digest"},
		{"cpu quantity", map[string]string{"cpuRequest": "fast"}, "cpuRequest", "fast", "Kubernetes quantity"},
		{"memory quantity", map[string]string{"memoryLimit": "-1Gi"}, "memoryLimit", "-1Gi", "greater than zero"},
		{"request above limit", map[string]string{"memoryRequest": "2Gi"}, "memoryRequest", "2Gi", "must not exceed memoryLimit"},
		{"heap format", map[string]string{"javaHeap": "512MB"}, "javaHeap", "512MB", "JVM heap size"},
		{"heap not below limit", map[string]string{"javaHeap": "1g"}, "javaHeap", "1g", "smaller than memoryLimit (1Gi)"},
		{"startup timeout", map[string]string{"startupTimeoutSeconds": "5"}, "startupTimeoutSeconds", "5", "from 30 to 1800"},
		{"service type", map[string]string{"serviceType": "Ingress"}, "serviceType", "Ingress", "ClusterIP, NodePort, LoadBalancer"},
		{"http port", map[string]string{"httpPort": "70000"}, "httpPort", "70000", "a TCP port"},
		{"schedule name too long", map[string]string{"snapshotSchedule": "daily", "diskName": "d" + strings.Repeat("x", 53) + "z"}, "diskName", "d" + strings.Repeat("x", 53) + "z", "at most 53 characters when snapshotSchedule is set"},
		{"address mode", map[string]string{"addressMode": "static"}, "addressMode", "static", "none, create, adopt"},
		{"static address without a load balancer", map[string]string{"addressMode": "create", "addressName": "loklak"}, "addressMode", "create", "unless serviceType is LoadBalancer"},
		{"static address without a name", map[string]string{"serviceType": "LoadBalancer", "addressMode": "create"}, "addressName", "", "is required"},
		{"address name", map[string]string{"serviceType": "LoadBalancer", "addressMode": "adopt", "addressName": "Loklak_IP"}, "addressName", "Loklak_IP", "Compute Engine address name"},
		{"address name without a mode", map[string]string{"addressName": "loklak"}, "addressName", "loklak", `must be empty when addressMode is "none"`},
		{"alert threshold", map[string]string{"volumeAlertPercent": "100", "volumeAlertChannels": "projects/loklak-server/notificationChannels/1"}, "volumeAlertPercent", "100", "from 0 to 99"},
		{"alert without a channel", map[string]string{"volumeAlertPercent": "80"}, "volumeAlertChannels", "", "an alert nobody receives is not an alert"},
		{"alert channel", map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": "projects/loklak-server/notificationChannels/1,ops@example.org"}, "volumeAlertChannels", "projects/loklak-server/notificationChannels/1,ops@example.org", "projects/PROJECT/notificationChannels/ID"},
		{"alert channel without an alert", map[string]string{"volumeAlertChannels": "projects/loklak-server/notificationChannels/1"}, "volumeAlertChannels", "projects/loklak-server/notificationChannels/1", "must be empty when volumeAlertPercent is 0"},
		{"ephemeral storage quantity", map[string]string{"ephemeralStorageLimit": "lots"}, "ephemeralStorageLimit", "lots", "Kubernetes quantity"},
		{"ephemeral request above limit", map[string]string{"ephemeralStorageRequest": "10Gi"}, "ephemeralStorageRequest", "10Gi", "must not exceed ephemeralStorageLimit"},
		{"heap that overflows", map[string]string{"javaHeap": "9000000000g"}, "javaHeap", "9000000000g", "smaller than memoryLimit (1Gi)"},
		{"cluster identifier with a space", map[string]string{"clusterIdentifier": "my cluster"}, "clusterIdentifier", "my cluster", "without spaces"},
		{"missing cluster identifier", map[string]string{"clusterIdentifier": ""}, "clusterIdentifier", "", "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := runStack(t, "dev", tc.overrides)
			if err == nil {
				t.Fatalf("program accepted %v", tc.overrides)
			}
			msg := err.Error()
			for _, part := range []string{"loklak-dumps:" + tc.key, strconv.Quote(tc.value), tc.allowed} {
				if !strings.Contains(msg, part) {
					t.Errorf("error does not contain %q:\n%s", part, msg)
				}
			}
			if n := len(rec.Resources()); n != 0 {
				t.Errorf("%d resources registered before the error, want 0", n)
			}
		})
	}
}

func TestMisspelledKeysAreRefusedWithASuggestion(t *testing.T) {
	rec, err := runStack(t, "dev", map[string]string{"imag": "loklak/loklak_server:v1", "diskSizeGB": "20", "completelyUnrelated": "x"})
	if err == nil {
		t.Fatal("undeclared keys were accepted")
	}
	for _, part := range []string{
		`config loklak-dumps:imag = "imag": is not a config key of this project (see Pulumi.yaml); did you mean "image"?`,
		`config loklak-dumps:diskSizeGB = "diskSizeGB": is not a config key of this project (see Pulumi.yaml); did you mean "diskSizeGb"?`,
		`config loklak-dumps:completelyUnrelated = "completelyUnrelated": is not a config key of this project (see Pulumi.yaml)`,
	} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error lacks %q:\n%s", part, err)
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.Contains(line, "completelyUnrelated =") && strings.Contains(line, "did you mean") {
			t.Errorf("suggested a key for an unrelated name: %s", line)
		}
	}
	if n := len(rec.Resources()); n != 0 {
		t.Errorf("%d resources registered, want 0", n)
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := runStack(t, "dev", map[string]string{"zone": "nowhere", "diskSizeGb": "1", "replicas": "3", "image": "x"})
	var ce *infra.ConfigError
	ok := errors.As(err, &ce)
	if !ok {
		t.Fatalf("want a *ConfigError, got %v", err)
	}
	var keys []string
	for _, fe := range ce.Errors {
		keys = append(keys, fe.Key)
	}
	if got, want := strings.Join(keys, ","), "zone,diskSizeGb,image,replicas"; got != want {
		t.Errorf("keys with errors = %s, want %s", got, want)
	}
	if !strings.Contains(err.Error(), "4 problem(s); nothing was changed") {
		t.Errorf("summary missing from: %s", err)
	}
}

func TestValidValuesAtTheEdgesAreAccepted(t *testing.T) {
	for _, tc := range []struct {
		overrides map[string]string
		typ, path string
		want      any
	}{
		{map[string]string{"diskSizeGb": "10"}, tDisk, "size", float64(10)},
		{map[string]string{"diskSizeGb": "65536"}, tDisk, "size", float64(65536)},
		{map[string]string{"replicas": "0"}, tDeployment, "spec.replicas", float64(0)},
		{map[string]string{"region": "us-central1", "snapshotSchedule": "daily"}, tPolicy, "region", "us-central1"},
		{map[string]string{"image": "loklak/loklak_server@sha256:" + strings.Repeat("a", 64)}, tDeployment, "spec.template.spec.containers.0.image", "loklak/loklak_server@sha256:" + strings.Repeat("a", 64)},
		{map[string]string{"image": "registry.example.com:5000/loklak/server:v1.2"}, tDeployment, "spec.template.spec.containers.0.image", "registry.example.com:5000/loklak/server:v1.2"},
		{map[string]string{"javaHeap": "1000m", "memoryLimit": "1Gi"}, tDeployment, "spec.template.spec.containers.0.env.1.value", "1000m"},
		{map[string]string{"gcpProject": "example.com:loklak-prod"}, tDisk, "project", "example.com:loklak-prod"},
		{map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-f"]`, "diskSizeGb": "200"}, tRegionDisk, "size", float64(200)},
		{map[string]string{"diskReplicaZones": `["us-central1-b","us-central1-c"]`, "diskType": "pd-balanced", "diskSizeGb": "10"}, tRegionDisk, "size", float64(10)},
		{map[string]string{"diskReplicaZones": `[]`}, tDisk, "zone", "us-central1-a"},
		{map[string]string{"diskSourceSnapshot": "projects/other-project/global/snapshots/s1"}, tDisk, "snapshot", "projects/other-project/global/snapshots/s1"},
		{map[string]string{"archiveBucket": "abc"}, tBucket, "name", "abc"},
		{map[string]string{"archiveBucket": strings.Repeat("a", 63)}, tBucket, "name", strings.Repeat("a", 63)},
		{map[string]string{"archiveBucket": "dumps.loklak.org"}, tBucket, "name", "dumps.loklak.org"},
		{map[string]string{"archiveBucket": "loklak-dumps", "archiveLocation": "US"}, tBucket, "location", "US"},
		{map[string]string{"archiveBucket": "loklak-dumps", "archiveSoftDeleteDays": "90"}, tBucket, "softDeletePolicy.retentionDurationSeconds", float64(90 * 86400)},
		{map[string]string{"archiveBucket": "loklak-dumps", "archiveSoftDeleteDays": "0"}, tBucket, "softDeletePolicy.retentionDurationSeconds", float64(0)},
		{map[string]string{"archiveBucket": "loklak-dumps", "archiveRetentionDays": "24855"}, tBucket, "retentionPolicy.retentionPeriod", float64(24855 * 86400)},
		{map[string]string{"archiveBucket": "loklak-dumps", "archiveMinAgeMinutes": "1"}, tDeployment, "spec.template.spec.containers.1.env.2.value", "1"},
		{map[string]string{"diskSourceSnapshot": "s-" + strings.Repeat("x", 61)}, tDisk, "snapshot", "projects/loklak-server/global/snapshots/s-" + strings.Repeat("x", 61)},
		{map[string]string{"diskSourceSnapshot": "s1", "namespace": strings.Repeat("n", 49)}, tPV, "metadata.name", strings.Repeat("n", 49) + "-dump" +
			volumeTag("projects/loklak-server/zones/us-central1-a/disks/loklak-dev-data", "projects/loklak-server/global/snapshots/s1")},
	} {
		rec, err := runStack(t, "dev", tc.overrides)
		if err != nil {
			t.Errorf("%v refused: %v", tc.overrides, err)
			continue
		}
		want(t, fmt.Sprintf("%v: %s %s", tc.overrides, tc.typ, tc.path), rec.One(t, tc.typ).Get(tc.path), tc.want)
	}
}

// The longest disk name that still leaves room for its schedule's name is accepted, and both names reach
// Compute Engine as given.
func TestLongestDiskNameWithASchedule(t *testing.T) {
	name := "d" + strings.Repeat("x", 52)
	rec := mustRun(t, "dev", map[string]string{"snapshotSchedule": "daily", "diskName": name})
	want(t, "disk name", rec.One(t, tDisk).String("name"), name)
	policy := rec.One(t, tPolicy).String("name")
	want(t, "schedule name", policy, name+"-snapshots")
	want(t, "schedule name length", len(policy), 63)
}
