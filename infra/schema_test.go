package infra_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

// Pulumi.yaml's schema and the keys the program reads must be the same set, with the same types,
// each described, so `pulumi config` and the program never disagree.
func TestSchemaMatchesTheKeysTheProgramReads(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Name.String(); got != project {
		t.Fatalf("project name %q, want %q", got, project)
	}
	var declared []string
	for key, ct := range p.Config {
		declared = append(declared, key)
		typ, read := infra.Keys[key]
		if !read {
			t.Errorf("Pulumi.yaml declares %s, which the program never reads", key)
			continue
		}
		if ct.Type == nil || *ct.Type != typ {
			t.Errorf("Pulumi.yaml: %s has type %v, the program reads it as %s", key, ct.Type, typ)
		}
		if ct.Description == "" {
			t.Errorf("Pulumi.yaml: %s has no description", key)
		}
	}
	for _, key := range infra.SortedKeys() {
		if !slices.Contains(declared, key) {
			t.Errorf("the program reads %s, which Pulumi.yaml does not declare", key)
		}
	}
}

// Only the values that identify a deployment have no default; everything else runs as declared.
func TestOnlyIdentityKeysLackDefaults(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	var undefaulted []string
	for key, ct := range p.Config {
		if ct.Default == nil {
			undefaulted = append(undefaulted, key)
		}
	}
	slices.Sort(undefaulted)
	if want := []string{"diskName", "gcpProject", "image"}; !slices.Equal(undefaulted, want) {
		t.Errorf("keys without a default = %v, want %v", undefaulted, want)
	}
}

// Every key the schema declares changes what the program declares: set to another valid value (within
// the context some keys need), the recorded resources or outputs differ. A key the program stopped
// reading would leave them the same. Two exceptions: region may only repeat zone's region, so it is read
// only to be checked (the bad-value tests show that); diskRecreateBlank only lifts the refusal to create a
// lost disk again (TestLostDiskIsNotRecreatedBlank shows that).
func TestEveryKeyChangesWhatIsDeclared(t *testing.T) {
	daily := map[string]string{"snapshotSchedule": "daily"}
	lb := map[string]string{"serviceType": "LoadBalancer"}
	lbAddress := map[string]string{"serviceType": "LoadBalancer", "addressMode": "create", "addressName": "a"}
	const channel1 = "projects/p-123456/notificationChannels/1"
	alerting := map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": channel1}
	archiving := map[string]string{"archiveBucket": "loklak-dev-dumps"}
	cold := map[string]string{"archiveBucket": "loklak-dev-dumps", "archiveColdAfterDays": "30"}
	inherited := map[string]string{"archiveBucket": "loklak-dev-dumps", "archivePublicAccessPrevention": "inherited"}
	cases := map[string]struct{ context, change map[string]string }{
		"gcpProject":                    {nil, map[string]string{"gcpProject": "other-project"}},
		"zone":                          {nil, map[string]string{"zone": "us-east1-b"}},
		"diskMode":                      {nil, map[string]string{"diskMode": "external"}},
		"diskName":                      {nil, map[string]string{"diskName": "other-disk"}},
		"diskSizeGb":                    {nil, map[string]string{"diskSizeGb": "20"}},
		"diskType":                      {nil, map[string]string{"diskType": "pd-ssd"}},
		"diskLabels":                    {nil, map[string]string{"diskLabels": `["app=other"]`}},
		"diskProtect":                   {nil, map[string]string{"diskProtect": "false"}},
		"diskReplicaZones":              {map[string]string{"diskSizeGb": "200"}, map[string]string{"diskReplicaZones": `["us-central1-a","us-central1-b"]`}},
		"diskSourceSnapshot":            {nil, map[string]string{"diskSourceSnapshot": "s1"}},
		"diskRetainOnDelete":            {nil, map[string]string{"diskRetainOnDelete": "false"}},
		"snapshotSchedule":              {nil, daily},
		"snapshotStartTime":             {daily, map[string]string{"snapshotStartTime": "05:00"}},
		"snapshotHoursInCycle":          {map[string]string{"snapshotSchedule": "hourly"}, map[string]string{"snapshotHoursInCycle": "4"}},
		"snapshotDayOfWeek":             {map[string]string{"snapshotSchedule": "weekly"}, map[string]string{"snapshotDayOfWeek": "MONDAY"}},
		"snapshotRetentionDays":         {daily, map[string]string{"snapshotRetentionDays": "30"}},
		"kubeconfig":                    {nil, map[string]string{"kubeconfig": "apiVersion: v1\nkind: Config\n"}},
		"kubeContext":                   {nil, map[string]string{"kubeContext": "other"}},
		"clusterIdentifier":             {nil, map[string]string{"clusterIdentifier": "other"}},
		"namespace":                     {nil, map[string]string{"namespace": "other-ns"}},
		"createNamespace":               {nil, map[string]string{"createNamespace": "false"}},
		"image":                         {nil, map[string]string{"image": "loklak/loklak_server:other"}},
		"replicas":                      {nil, map[string]string{"replicas": "0"}},
		"httpPort":                      {nil, map[string]string{"httpPort": "9100"}},
		"javaHeap":                      {nil, map[string]string{"javaHeap": "256m"}},
		"cpuRequest":                    {nil, map[string]string{"cpuRequest": "100m"}},
		"cpuLimit":                      {nil, map[string]string{"cpuLimit": "2"}},
		"memoryRequest":                 {nil, map[string]string{"memoryRequest": "512Mi"}},
		"memoryLimit":                   {nil, map[string]string{"memoryLimit": "2Gi"}},
		"startupTimeoutSeconds":         {nil, map[string]string{"startupTimeoutSeconds": "600"}},
		"ephemeralStorageRequest":       {nil, map[string]string{"ephemeralStorageRequest": "2Gi"}},
		"ephemeralStorageLimit":         {nil, map[string]string{"ephemeralStorageLimit": "8Gi"}},
		"dumpWriteEnabled":              {nil, map[string]string{"dumpWriteEnabled": "false"}},
		"serviceType":                   {nil, map[string]string{"serviceType": "NodePort"}},
		"servicePort":                   {nil, map[string]string{"servicePort": "8080"}},
		"addressMode":                   {lb, map[string]string{"addressMode": "create", "addressName": "a"}},
		"addressName":                   {lbAddress, map[string]string{"addressName": "b"}},
		"volumeAlertPercent":            {nil, map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": channel1}},
		"volumeAlertChannels":           {alerting, map[string]string{"volumeAlertChannels": "projects/p-123456/notificationChannels/2"}},
		"archiveBucket":                 {nil, archiving},
		"archiveLocation":               {archiving, map[string]string{"archiveLocation": "US"}},
		"archiverEnabled":               {archiving, map[string]string{"archiverEnabled": "false"}},
		"archiverImage":                 {archiving, map[string]string{"archiverImage": "rclone/rclone:1.70.3"}},
		"archiveMinAgeMinutes":          {archiving, map[string]string{"archiveMinAgeMinutes": "5"}},
		"archiveIntervalSeconds":        {archiving, map[string]string{"archiveIntervalSeconds": "60"}},
		"archivePruneAfterDays":         {archiving, map[string]string{"archivePruneAfterDays": "7"}},
		"archiveColdStorageClass":       {cold, map[string]string{"archiveColdStorageClass": "ARCHIVE"}},
		"archiveColdAfterDays":          {archiving, map[string]string{"archiveColdAfterDays": "30"}},
		"archiveRetentionDays":          {archiving, map[string]string{"archiveRetentionDays": "365"}},
		"archiveSoftDeleteDays":         {archiving, map[string]string{"archiveSoftDeleteDays": "0"}},
		"archivePublic":                 {inherited, map[string]string{"archivePublic": "true"}},
		"archivePublicAccessPrevention": {archiving, map[string]string{"archivePublicAccessPrevention": "inherited"}},
		"archiveEndpoint":               {archiving, map[string]string{"archiveEndpoint": "http://10.0.0.1:4443/storage/v1/"}},
		"dumpRotationEnabled":           {nil, map[string]string{"dumpRotationEnabled": "false"}},
		"dumpRotationHourUtc":           {nil, map[string]string{"dumpRotationHourUtc": "4"}},
		"dumpRotationImage":             {nil, map[string]string{"dumpRotationImage": "registry.k8s.io/kubectl:v1.34.2"}},
	}
	declared := func(overrides map[string]string) string {
		rec := mustRun(t, "dev", overrides)
		var lines []string
		for _, r := range rec.Resources() {
			lines = append(lines, fmt.Sprintf("%+v", r)) // fmt prints maps in key order
		}
		slices.Sort(lines) // registration order is not part of what is declared
		return fmt.Sprintf("%v %v", lines, rec.Outputs)
	}
	// The comparison means something only if the same config declares the same thing every time.
	if a, b := declared(nil), declared(nil); a != b {
		t.Fatalf("two runs of the same config differ:\n%s\n%s", a, b)
	}
	for _, key := range infra.SortedKeys() {
		if key == "region" || key == "diskRecreateBlank" {
			continue
		}
		tc, ok := cases[key]
		if !ok {
			t.Errorf("%s has no case here: give it a value that must change what the program declares", key)
			continue
		}
		changed := maps.Clone(tc.context)
		if changed == nil {
			changed = map[string]string{}
		}
		maps.Copy(changed, tc.change)
		if declared(tc.context) == declared(changed) {
			t.Errorf("setting %v changes nothing the program declares: is %s read?", tc.change, key)
		}
	}
}
