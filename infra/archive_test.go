package infra_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/recorder"
)

const (
	tBucket         = "gcp:storage/bucket:Bucket"
	tAccount        = "gcp:serviceaccount/account:Account"
	tBucketIAM      = "gcp:storage/bucketIAMMember:BucketIAMMember"
	tAccountIAM     = "gcp:serviceaccount/iAMMember:IAMMember"
	tServiceAccount = "kubernetes:core/v1:ServiceAccount"
	tDumpArchive    = "loklak-dumps:storage:DumpArchive"
)

var archiving = map[string]string{"archiveBucket": "loklak-dev-dumps"} // another name than Pulumi.dev.yaml's

func withArchive(overrides map[string]string) map[string]string {
	m := map[string]string{"archiveBucket": "loklak-dev-dumps"}
	for k, v := range overrides {
		m[k] = v
	}
	return m
}

// archiver returns the archiver container of the Deployment's pod, failing when there is none. It looks
// in the pod's containers and, while server.go still declares it there, its init containers.
func archiver(t *testing.T, rec *recorder.Recorder) map[string]any {
	t.Helper()
	dep := rec.One(t, tDeployment)
	var found []map[string]any
	for _, field := range []string{"spec.template.spec.containers", "spec.template.spec.initContainers"} {
		cs, _ := dep.Get(field).([]any)
		for _, c := range cs {
			if m, _ := c.(map[string]any); m["name"] == "archiver" {
				found = append(found, m)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("the pod has %d archiver containers, want one", len(found))
	}
	return found[0]
}

func envOf(container map[string]any) map[string]string {
	env := map[string]string{}
	for _, e := range container["env"].([]any) {
		m := e.(map[string]any)
		env[m["name"].(string)], _ = m["value"].(string)
	}
	return env
}

// Off by default (Pulumi.yaml; the committed stacks turn it on): no Cloud Storage resource, no sidecar,
// no Kubernetes service account.
func TestNoArchiveByDefault(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		rec := mustRun(t, stack, map[string]string{"archiveBucket": ""})
		for _, typ := range []string{tBucket, tAccount, tBucketIAM, tAccountIAM, tServiceAccount} {
			if n := len(archiveOnly(rec.OfType(typ))); n != 0 {
				t.Errorf("%s: %d %s declared without archiveBucket", stack, n, typ)
			}
		}
		if inits := rec.One(t, tDeployment).Get("spec.template.spec.initContainers"); inits != nil {
			t.Errorf("%s: init containers %v without an archive", stack, inits)
		}
	}
}

// The bucket keeps every dump: protected, retained on delete, never forceDestroy, versioned, uniform
// access, public access prevention enforced, soft delete stated.
func TestArchiveBucketIsProtectedAndStated(t *testing.T) {
	rec := mustRun(t, "dev", archiving)
	b := rec.One(t, tBucket)
	want(t, "protect", b.Protect, true)
	want(t, "retainOnDelete", b.RetainOnDelete, true)
	want(t, "name (explicit: never autonamed)", b.String("name"), "loklak-dev-dumps")
	want(t, "location (the stack's region by default)", b.String("location"), "us-central1")
	want(t, "project", b.String("project"), "loklak-server")
	want(t, "forceDestroy", b.Get("forceDestroy"), any(false))
	want(t, "uniformBucketLevelAccess", b.Get("uniformBucketLevelAccess"), any(true))
	want(t, "publicAccessPrevention", b.String("publicAccessPrevention"), "enforced")
	want(t, "versioning", b.Get("versioning.enabled"), any(true))
	want(t, "soft delete (7 days, stated)", b.Get("softDeletePolicy.retentionDurationSeconds"), any(float64(7*86400)))
	want(t, "no retention policy by default", b.Get("retentionPolicy"), nil)
	want(t, "no lifecycle rule by default", len(slicesOf(b.Get("lifecycleRules"))), 0)
	wantParent(t, rec, b, tDumpArchive)
	want(t, "dumpArchiveUrl", rec.Outputs["dumpArchiveUrl"], any("gs://loklak-dev-dumps"))
	if _, ok := rec.Outputs["dumpArchivePublicUrl"]; ok {
		t.Errorf("dumpArchivePublicUrl exported for a private archive")
	}
}

func slicesOf(v any) []any { s, _ := v.([]any); return s }

// Options turned on: a cold class after N days, a retention policy never locked, a public archive.
func TestArchiveOptions(t *testing.T) {
	rec := mustRun(t, "dev", withArchive(map[string]string{
		"archiveColdAfterDays": "30", "archiveColdStorageClass": "ARCHIVE", "archiveRetentionDays": "365",
		"archivePublic": "true", "archivePublicAccessPrevention": "inherited",
	}))
	b := rec.One(t, tBucket)
	rules := slicesOf(b.Get("lifecycleRules"))
	if len(rules) != 1 {
		t.Fatalf("lifecycle rules = %v, want one", rules)
	}
	rule := recorder.Resource{Inputs: rules[0].(map[string]any)}
	want(t, "rule action", rule.String("action.type"), "SetStorageClass")
	want(t, "rule class", rule.String("action.storageClass"), "ARCHIVE")
	want(t, "rule age", rule.Get("condition.age"), any(float64(30)))
	want(t, "retention period", b.Get("retentionPolicy.retentionPeriod"), any(float64(365*86400)))
	want(t, "retention never locked", b.Get("retentionPolicy.isLocked"), any(false))
	want(t, "no versioning with a retention policy (Cloud Storage refuses both)", b.Get("versioning.enabled"), any(false))
	want(t, "publicAccessPrevention", b.String("publicAccessPrevention"), "inherited")
	var public []recorder.Resource
	for _, m := range rec.OfType(tBucketIAM) {
		if m.String("member") == "allUsers" {
			public = append(public, m)
		}
	}
	if len(public) != 1 || public[0].String("role") != "roles/storage.objectViewer" {
		t.Fatalf("public grants = %+v, want allUsers roles/storage.objectViewer once", public)
	}
	want(t, "dumpArchivePublicUrl", rec.Outputs["dumpArchivePublicUrl"], any("https://storage.googleapis.com/loklak-dev-dumps/"))
}

// The archiver may add and read objects, nothing more; Workload Identity lets loklak's Kubernetes
// service account act as it; every member is delete-before-replace and names the bucket, not its URL.
func TestArchiverGrantsAreLeastPrivilegeAndDeleteBeforeReplace(t *testing.T) {
	rec := mustRun(t, "dev", archiving)
	acct := rec.One(t, tAccount)
	wantDependsOn(t, acct, tBucket, "bucket") // a refused bucket change stops the account's too
	email := acct.String("accountId") + "@loklak-server.iam.gserviceaccount.com"
	if id := acct.String("accountId"); len(id) < 6 || len(id) > 30 {
		t.Errorf("accountId %q: the API takes 6 to 30 characters", id)
	}
	var roles []string
	for _, m := range rec.OfType(tBucketIAM) {
		want(t, m.Name+" bucket (the name, never gs://)", m.String("bucket"), "loklak-dev-dumps")
		want(t, m.Name+" member", m.String("member"), "serviceAccount:"+email)
		want(t, m.Name+" deleteBeforeReplace (pulumi-gcp#2463)", m.DeleteBeforeReplace, true)
		wantDependsOn(t, m, tBucket, "bucket")
		roles = append(roles, m.String("role"))
	}
	slices.Sort(roles)
	wantDeep(t, "archiver roles on the bucket", roles, []string{"roles/storage.objectCreator", "roles/storage.objectViewer"})

	wi := rec.One(t, tAccountIAM)
	want(t, "workload identity role", wi.String("role"), "roles/iam.workloadIdentityUser")
	want(t, "workload identity member", wi.String("member"), "serviceAccount:loklak-server.svc.id.goog[loklak-dev/loklak-server]")
	want(t, "serviceAccountId (the account's name, not its email)", wi.String("serviceAccountId"), "projects/loklak-server/serviceAccounts/"+email)
	want(t, "workload identity deleteBeforeReplace", wi.DeleteBeforeReplace, true)

	ksa := archiverKSA(t, rec)
	want(t, "KSA name", ksa.String("metadata.name"), infra.ArchiverKubernetesServiceAccount)
	want(t, "KSA namespace", ksa.String("metadata.namespace"), "loklak-dev")
	annotations, _ := ksa.Get("metadata.annotations").(map[string]any)
	want(t, "KSA annotation", annotations["iam.gke.io/gcp-service-account"], any(email))
	want(t, "KSA mounts no token", ksa.Get("automountServiceAccountToken"), any(false))
	dep := rec.One(t, tDeployment)
	want(t, "pod's service account", dep.String("spec.template.spec.serviceAccountName"), infra.ArchiverKubernetesServiceAccount)
	want(t, "pod mounts no token", dep.Get("spec.template.spec.automountServiceAccountToken"), any(false))
	want(t, "dumpArchiverAccount", rec.Outputs["dumpArchiverAccount"], any(email))
}

// The archiver copies (never syncs) only whole closed files, verifies by checksum, never overwrites,
// prunes only after a successful copy, and runs with loklak's least privilege, as a user that is not root,
// pulling its image only when the node lacks it.
func TestArchiverContainer(t *testing.T) {
	for _, tc := range []struct{ prune int }{{0}, {7}} {
		rec := mustRun(t, "dev", withArchive(map[string]string{"archivePruneAfterDays": strconv.Itoa(tc.prune), "archiveEndpoint": ""}))
		c := archiver(t, rec)
		r := recorder.Resource{Inputs: c}
		want(t, "restartPolicy (an ordinary container, not a native sidecar)", r.String("restartPolicy"), "")
		want(t, "image", strings.HasPrefix(r.String("image"), "rclone/rclone:1.71.0"), true)
		want(t, "imagePullPolicy (a tag, still pulled only when missing)", r.String("imagePullPolicy"), "IfNotPresent")
		wantDeep(t, "command", []any{r.Get("command.0"), r.Get("command.1")}, []any{"/bin/sh", "-c"})
		script := r.String("command.2")
		cfg := infra.ArchiveConfig{Bucket: "loklak-dev-dumps", ArchiverEnabled: true, PruneAfterDays: tc.prune}
		if !strings.Contains(script, "( "+infra.ArchiverRound(cfg)+" ) &") {
			t.Errorf("prune=%d: the loop does not run infra.ArchiverRound in the background:\n%s", tc.prune, script)
		}
		for _, must := range []string{"trap 'echo \"archiver: stopping\"; exit 0' TERM INT", "archive round done", "archive round FAILED"} {
			if !strings.Contains(script, must) {
				t.Errorf("prune=%d: the loop lacks %q:\n%s", tc.prune, must, script)
			}
		}

		env := envOf(c)
		want(t, "destination", env["ARCHIVE_DESTINATION"], "archive:loklak-dev-dumps/"+infra.ArchivePrefix)
		want(t, "source", env["ARCHIVE_SOURCE"], infra.DataPath+"/dump/own")
		want(t, "staging, on the data disk beside dump/own", env["ARCHIVE_STAGING"], infra.DataPath+"/dump/restore-staging")
		want(t, "min age", env["ARCHIVE_MIN_AGE_MINUTES"], "60")
		want(t, "prune age", env["ARCHIVE_PRUNE_AGE_MINUTES"], strconv.Itoa(tc.prune*24*60))
		want(t, "restore script", env["ARCHIVE_RESTORE"], infra.ArchiverRestore(cfg))
		want(t, "HOME (the root filesystem is read-only)", env["HOME"], "/tmp")
		want(t, "credentials (Workload Identity)", env["RCLONE_CONFIG_ARCHIVE_ENV_AUTH"], "true")
		want(t, "no object ACLs", env["RCLONE_CONFIG_ARCHIVE_BUCKET_POLICY_ONLY"], "true")
		if _, ok := env["RCLONE_CONFIG_ARCHIVE_ENDPOINT"]; ok {
			t.Errorf("an endpoint without archiveEndpoint")
		}
		mounts := slicesOf(c["volumeMounts"])
		data := recorder.Resource{Inputs: mounts[0].(map[string]any)}
		want(t, "mount path", data.String("mountPath"), infra.DataPath)
		want(t, "no privilege escalation", r.Get("securityContext.allowPrivilegeEscalation"), any(false))
		wantDeep(t, "capabilities dropped", r.Get("securityContext.capabilities.drop"), []any{"ALL"})
		want(t, "read-only root filesystem", r.Get("securityContext.readOnlyRootFilesystem"), any(true))
		want(t, "runAsNonRoot", r.Get("securityContext.runAsNonRoot"), any(true))
		want(t, "ArchiverUID", infra.ArchiverUID, 65532)
		for _, id := range []string{"runAsUser", "runAsGroup"} {
			if v, _ := r.Get("securityContext." + id).(float64); v != 65532 {
				t.Errorf("securityContext.%s = %v, want 65532", id, r.Get("securityContext."+id))
			}
		}
		for _, q := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
			if r.String("resources."+q) == "" {
				t.Errorf("the archiver has no %s", q)
			}
		}
		want(t, "pod seccomp", rec.One(t, tDeployment).String("spec.template.spec.securityContext.seccompProfile.type"), "RuntimeDefault")
	}
}

// The round: one listing of the bucket, candidates found locally, whole files only (no .txt beside them,
// gzip -t before a first upload), exact lists for rclone, a differing archived copy reported, pruning only
// after a successful copy and only by MD5; nothing that could delete or overwrite in the bucket.
func TestArchiverRound(t *testing.T) {
	for _, prune := range []int{0, 7} {
		round := infra.ArchiverRound(infra.ArchiveConfig{Bucket: "b", ArchiverEnabled: true, PruneAfterDays: prune})
		for _, must := range []string{
			`rclone lsf "$ARCHIVE_DESTINATION" --files-only --format sp`,
			`find . -maxdepth 1 -type f -name 'messages_*.txt.gz' ! -mmin -"$ARCHIVE_MIN_AGE_MINUTES"`,
			`if [ -e "${n%.gz}" ]; then`,
			`if err=$(gzip -t "$n" 2>&1); then`,
			"NOT ARCHIVED: $n is not a complete gzip stream",
			"ARCHIVED COPY DIFFERS: $n: the bucket holds $s bytes, the disk $size bytes",
			`rclone copy "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION" --files-from "$w/copy" --no-traverse --immutable --retries 1`,
			"exit $status",
		} {
			if !strings.Contains(round, must) {
				t.Errorf("prune=%d: the round lacks %q:\n%s", prune, must, round)
			}
		}
		if n := strings.Count(round, "rclone lsf"); n != 1 {
			t.Errorf("prune=%d: the round lists the bucket %d times, want once", prune, n)
		}
		// The sibling check comes before the bucket is consulted and before gzip -t.
		if sib, gz := strings.Index(round, `[ -e "${n%.gz}" ]`), strings.Index(round, "gzip -t"); sib < 0 || sib > gz {
			t.Errorf("prune=%d: the .txt check does not come first", prune)
		}
		move := `rclone move "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION" --files-from "$w/pruning" --no-traverse --checksum --immutable --retries 1`
		if got := strings.Contains(round, move); got != (prune > 0) {
			t.Errorf("prune=%d: the round moves (%s): %v", prune, move, got)
		}
		if prune > 0 {
			for _, must := range []string{`! -mmin -"$ARCHIVE_PRUNE_AGE_MINUTES"`, `if [ -z "$copied" ]; then`} {
				if !strings.Contains(round, must) {
					t.Errorf("prune=%d: the round lacks %q", prune, must)
				}
			}
			if strings.Index(round, move) < strings.Index(round, "rclone copy") {
				t.Errorf("the round moves before it copies")
			}
		}
		for _, never := range []string{"rclone sync", "rclone delete", "purge", "rclone rmdir", "--ignore-checksum", "--size-only", "--delete", "--ignore-existing"} {
			if strings.Contains(round, never) {
				t.Errorf("prune=%d: the round has %q", prune, never)
			}
		}
		if n, ok := strings.Count(round, "rm -"), strings.Contains(round, `trap 'rm -rf "$w"' EXIT`); n != 1 || !ok {
			t.Errorf("prune=%d: the round removes something other than its own temporary directory", prune)
		}
	}
}

// The restore: staged on the data disk, checked with gzip -t, a local file replaced only by an object
// whose content it begins, nothing deleted in the bucket, and with pruning only what pruning keeps.
func TestArchiverRestore(t *testing.T) {
	for _, prune := range []int{0, 7} {
		restore := infra.ArchiverRestore(infra.ArchiveConfig{Bucket: "b", ArchiverEnabled: true, PruneAfterDays: prune})
		for _, must := range []string{
			`rclone copyto "$ARCHIVE_DESTINATION/$name" "$s"`,
			`if ! err=$(gzip -t "$s" 2>&1); then`,
			"CORRUPT IN BUCKET", "CONFLICT", "REPLACED", "SKIPPED",
			`if [ -e "${l%.gz}" ]; then`,
			`prefix "$l" "$s" "$lz"`,
			`[ "$failed" -eq 0 ]`,
		} {
			if !strings.Contains(restore, must) {
				t.Errorf("prune=%d: the restore lacks %q:\n%s", prune, must, restore)
			}
		}
		if got := strings.Contains(restore, `--max-age "${ARCHIVE_PRUNE_AGE_MINUTES}m"`); got != (prune > 0) {
			t.Errorf("prune=%d: the restore limits itself to what pruning keeps: %v", prune, got)
		}
		for _, never := range []string{"rclone sync", "rclone move", "rclone delete", "purge", "rclone copy "} {
			if strings.Contains(restore, never) {
				t.Errorf("prune=%d: the restore has %q", prune, never)
			}
		}
	}
}

// An emulator endpoint: no credentials, the endpoint as given.
func TestArchiverEndpoint(t *testing.T) {
	rec := mustRun(t, "dev", withArchive(map[string]string{"archiveEndpoint": "http://10.0.0.1:4443/storage/v1/"}))
	env := envOf(archiver(t, rec))
	want(t, "endpoint", env["RCLONE_CONFIG_ARCHIVE_ENDPOINT"], "http://10.0.0.1:4443/storage/v1/")
	want(t, "anonymous", env["RCLONE_CONFIG_ARCHIVE_ANONYMOUS"], "true")
	if _, ok := env["RCLONE_CONFIG_ARCHIVE_ENV_AUTH"]; ok {
		t.Errorf("credentials asked for with an emulator endpoint")
	}
}

// archiverEnabled false: the bucket stays, protected; the sidecar, the account, its grants and the
// Kubernetes service account go.
func TestArchiverOffKeepsTheBucket(t *testing.T) {
	rec := mustRun(t, "dev", withArchive(map[string]string{"archiverEnabled": "false"}))
	b := rec.One(t, tBucket)
	want(t, "bucket protect", b.Protect, true)
	for _, typ := range []string{tAccount, tBucketIAM, tAccountIAM, tServiceAccount} {
		if n := len(archiveOnly(rec.OfType(typ))); n != 0 {
			t.Errorf("%d %s with the archiver off", n, typ)
		}
	}
	dep := rec.One(t, tDeployment)
	if inits := dep.Get("spec.template.spec.initContainers"); inits != nil {
		t.Errorf("init containers %v with the archiver off", inits)
	}
	// Named, not omitted: the API server would keep the archiver's service account (deprecated alias).
	want(t, "pod's service account", dep.String("spec.template.spec.serviceAccountName"), "default")
	want(t, "dumpArchiveUrl still exported", rec.Outputs["dumpArchiveUrl"], any("gs://loklak-dev-dumps"))
}

// The committed stacks archive: dev and prod each to a bucket of their own, prod's moved to COLDLINE
// after 30 days; neither prunes the disk.
func TestCommittedStacksArchive(t *testing.T) {
	for stack, bucket := range map[string]string{"dev": "loklak-server-dev-dumps", "prod": "loklak-server-dumps"} {
		rec := mustRun(t, stack, nil)
		want(t, stack+" bucket", rec.One(t, tBucket).String("name"), bucket)
		want(t, stack+" archiver verb", strings.Contains(recorder.Resource{Inputs: archiver(t, rec)}.String("command.2"), "rclone copy "), true)
	}
	rules := slicesOf(mustRun(t, "prod", nil).One(t, tBucket).Get("lifecycleRules"))
	if len(rules) != 1 || recorder.Lookup(rules[0].(map[string]any), "action.storageClass") != "COLDLINE" {
		t.Errorf("prod lifecycle rules = %v, want COLDLINE after 30 days", rules)
	}
}

// The pod restarts with the archiver only once its grants exist: the Kubernetes service account takes the
// account's email through every IAM member's output.
func TestArchiverWaitsForItsGrants(t *testing.T) {
	rec := mustRun(t, "dev", archiving)
	ksa := archiverKSA(t, rec)
	wantDependsOn(t, ksa, tAccountIAM, "archiver-workload-identity")
	wantDependsOn(t, ksa, tBucketIAM, "archiver-objectCreator")
	wantDependsOn(t, ksa, tBucketIAM, "archiver-objectViewer")
}

// archiveOnly leaves out the dump rotation's resources (rotation.go), which every committed stack declares.
func archiveOnly(rs []recorder.Resource) []recorder.Resource {
	var out []recorder.Resource
	for _, r := range rs {
		if r.String("metadata.name") != infra.RotationName {
			out = append(out, r)
		}
	}
	return out
}

// archiverKSA is the archiver's Kubernetes service account, failing unless there is exactly one.
func archiverKSA(t *testing.T, rec *recorder.Recorder) recorder.Resource {
	t.Helper()
	ksas := archiveOnly(rec.OfType(tServiceAccount))
	if len(ksas) != 1 {
		t.Fatalf("want exactly one archiver service account, got %d", len(ksas))
	}
	return ksas[0]
}

// RcloneDigest is the digest Docker Hub's rclone/rclone:1.71.0 resolves to, as recorded in public
// repositories' pinned image lists (docs/archive.md says how to check it). A tag can be re-pushed; the
// committed stacks run what the digest names and never ask Docker Hub again for an image a node has.
const rcloneDigest = "sha256:fd635aecd9667ee3c3bf920d14118090d4f2a83a080c1fa77e0bafbd4587ca87"

func TestCommittedStacksPinTheArchiverByDigest(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		c := archiver(t, mustRun(t, stack, nil))
		want(t, stack+" archiver image", c["image"].(string), "rclone/rclone:1.71.0@"+rcloneDigest)
		want(t, stack+" archiver pull policy", c["imagePullPolicy"].(string), "IfNotPresent")
	}
}
