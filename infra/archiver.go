package infra

import (
	"strconv"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The archiver: an ordinary container of loklak's pod that copies loklak's closed dump files into the
// archive bucket with rclone. It runs beside loklak on the same node, so it mounts the same ReadWriteOnce
// claim. It is not an init container: loklak starts and writes its dumps even when the archiver's image
// cannot be pulled or the archiver keeps failing.
//
// What it must live with (loklak_server's JsonRepository.getCurrentDump and Compression.gzip): loklak
// appends to one messages_YYYYMMDD_NNNNNNNN.txt per run; only its next start, on a later GMT day, gzips
// the older .txt files, in place and in the background: it deletes an existing .txt.gz, writes the final
// .txt.gz directly and deletes the .txt only once that is done. So a .txt.gz with its .txt beside it may
// be incomplete (being written, or cut short and then left alone), however old it is; without the .txt
// it is whole, unless the disk lost it.
//
// rclone does the copying and the verifying (github.com/rclone/rclone v1.71.0); the shell chooses what:
//   - the round lists the bucket once (rclone lsf, names and sizes), finds the local candidates with find
//     (-mmin for the ages), and hands rclone exact lists (--files-from). rclone applies no other filter
//     to a --files-from list (fs/filter Filter.Include: "filesFrom takes precedence", before the age and
//     size filters; docs/content/filtering.md), and with --no-traverse it lists neither side: it looks up
//     each named file and object on its own (fs/march: makeListDir and the NoTraverse lookups), so a
//     round costs one listing of the bucket plus a request or two per file it copies or prunes.
//   - `rclone copy` (and `rclone move` when pruning) never deletes anything at the destination; a `sync`
//     would delete objects whose local file was pruned, so it is never used.
//   - --immutable: an object that exists with other bytes is an error, never overwritten (the archiver's
//     roles, objectCreator and objectViewer, could not overwrite one anyway).
//   - after each upload rclone compares the object's MD5, as Cloud Storage reports it, with the local
//     file's, and counts a mismatch as a failed transfer; `move` removes a local file only after a
//     verified transfer, or when the object already exists with the same size and MD5 (--checksum).
//   - a failed round (Cloud Storage unreachable, the container restarted mid-upload) leaves the local
//     files where they are; the next round, archiveIntervalSeconds later, copies what is missing. The
//     loop is the retry (--retries 1): a round fails fast and says so, and rclone's own low-level retries
//     (10 per request, with backoff) ride out a single failed request.

const (
	archiverName = "archiver"
	// archiveRemote is the rclone remote the environment configures (RCLONE_CONFIG_ARCHIVE_*).
	archiveRemote = "archive"
	// ArchivePrefix is where the dump files are in the bucket: the same path as on the disk, under data/.
	ArchivePrefix = "dump/own"
	// ArchiveStaging is where the restore (ArchiverRestore) puts the objects it downloads before it moves
	// them into ArchivePrefix: on the data disk (so the move is a rename), beside dump/own, not in it.
	ArchiveStaging = "dump/restore-staging"
	// archiverTmp is a small writable directory for rclone and the scripts; the root filesystem is
	// read-only. It is also the archiver's HOME.
	archiverTmp = "/tmp"
	// ArchiverUID is the archiver's user and group (the nonroot user of distroless images; rclone's image
	// has no user of its own). loklak runs as root and writes its files 0644 in its directories; the pod's
	// fsGroup must be ArchiverUID, so the archiver reads them through the group and, the directories being
	// group-writable, can remove them when pruning and add restored ones.
	ArchiverUID = 65532
)

// ArchiverArgs wires the archiver to the bucket by its output.
type ArchiverArgs struct {
	BucketName pulumi.StringOutput
	Config     ArchiveConfig
}

// archiverScript is the archiver's loop: one round, a line saying how it went, a pause. A person reads
// the log: the round names each file it does not archive and why, rclone's -v lines name each file copied
// (and, when pruning, deleted), and its stats line counts what was transferred.
//
// The shell is the container's PID 1, which ignores SIGTERM unless it traps it: the round and the pause
// run in the background and the loop waits for them, so a stop ends it at once instead of after the
// kubelet's 30 s grace period. An upload cut that way leaves no object, and no local file is removed.
func archiverScript(cfg ArchiveConfig) string {
	return `set -u
trap 'echo "archiver: stopping"; exit 0' TERM INT
while :; do
  echo "archive round: closed dumps from $ARCHIVE_SOURCE to $ARCHIVE_DESTINATION"
  ( ` + ArchiverRound(cfg) + ` ) &
  if wait $!; then
    echo "archive round done"
  else
    echo "archive round FAILED with exit status $?: no local file was removed unless the bucket holds it with the same MD5; next round in ${ARCHIVE_INTERVAL}s"
  fi
  sleep "$ARCHIVE_INTERVAL" &
  wait $!
done
`
}

// appletFallback lets the scripts run where /bin has only some of busybox's applets (the testbed's
// stand-in for rclone's image links six): a command that is missing becomes a function that calls it
// through busybox. rclone/rclone's image (Alpine) links all of them, and there it defines nothing.
const appletFallback = `for c in find xargs gzip mktemp mkdir mv rm cmp head mkfifo wc md5sum; do
  command -v "$c" >/dev/null 2>&1 || eval "$c() { busybox $c \"\$@\"; }"
done
`

// ArchiverRound is one round of the archiver, the shell script (busybox ash) its loop runs in a subshell,
// reading ARCHIVE_SOURCE, ARCHIVE_DESTINATION, ARCHIVE_MIN_AGE_MINUTES and ARCHIVE_PRUNE_AGE_MINUTES from
// the environment (archiverEnv). It exits non-zero when anything went wrong, and says what. Exported for
// the tests that run it against a Cloud Storage emulator.
//
//   - It lists the bucket once (rclone lsf: names and sizes) and the closed files (messages_*.txt.gz,
//     unmodified for ARCHIVE_MIN_AGE_MINUTES) with find.
//   - A file whose .txt is beside it is never archived, however old (loklak is compressing it, or its
//     compression was cut short and loklak's next start redoes it); the round says so and goes on.
//   - A file the bucket does not hold is checked with gzip -t before its first upload: one that is not a
//     complete gzip stream is NOT ARCHIVED, loudly, and the round fails. The others are copied in one
//     rclone copy --files-from LIST --no-traverse --immutable, each verified by MD5.
//   - A file the bucket holds with another size: ARCHIVED COPY DIFFERS, both sizes, the round fails, and
//     neither side changes (docs/archive.md says what to do). A file the bucket holds with its size is
//     not read again (prod's disk holds about 100 GiB of them).
//   - Then, when pruning and only if the copy succeeded: rclone move --files-from LIST --no-traverse
//     --checksum --immutable over the files at least ARCHIVE_PRUNE_AGE_MINUTES old, without a .txt, that
//     the bucket holds with their size; rclone removes each only when its object has the same MD5.
func ArchiverRound(cfg ArchiveConfig) string {
	var b strings.Builder
	b.WriteString(`set -u
` + appletFallback + `w=$(mktemp -d) || exit 1
trap 'rm -rf "$w"' EXIT
nl='
'
status=0
cd "$ARCHIVE_SOURCE" || exit 1
rclone lsf "$ARCHIVE_DESTINATION" --files-only --format sp --separator ' ' --include '/messages_*.txt.gz' --retries 1 >"$w/bucket" || {
  echo "archive: could not list $ARCHIVE_DESTINATION: nothing copied, nothing removed"; exit 1; }
bucket="$nl$(cat "$w/bucket")$nl"
find . -maxdepth 1 -type f -name 'messages_*.txt.gz' ! -mmin -"$ARCHIVE_MIN_AGE_MINUTES" | xargs -r ls -ln >"$w/closed" || {
  echo "archive: could not list the closed files in $ARCHIVE_SOURCE: nothing copied, nothing removed"; exit 1; }
`)
	if cfg.Prunes() {
		b.WriteString(`old="$nl$(find . -maxdepth 1 -type f -name 'messages_*.txt.gz' ! -mmin -"$ARCHIVE_PRUNE_AGE_MINUTES")$nl"
`)
	}
	b.WriteString(`: >"$w/copy"
: >"$w/prune"
while read -r _ _ _ _ size _ _ _ f; do
  n=${f#./}
  if [ -e "${n%.gz}" ]; then
    echo "archive: not archiving $n: ${n%.gz} is still beside it, so loklak is compressing it or its compression was cut short (loklak's next start compresses it again)"
    continue
  fi
  case $bucket in
  *"$nl$size $n$nl"*)
    echo "$n" >>"$w/prune" ;;
  *" $n$nl"*)
    while read -r s m; do [ "$m" = "$n" ] && break; done <"$w/bucket"
    echo "archive: ARCHIVED COPY DIFFERS: $n: the bucket holds $s bytes, the disk $size bytes; neither is changed nor removed (docs/archive.md, An archived copy that differs)"
    status=1 ;;
  *)
    if err=$(gzip -t "$n" 2>&1); then
      echo "$n" >>"$w/copy"
    else
      echo "archive: NOT ARCHIVED: $n is not a complete gzip stream ($err); it stays on the disk and out of the bucket (docs/archive.md, A file that is not archived)"
      status=1
    fi ;;
  esac
done <"$w/closed"
copied=yes
if [ -s "$w/copy" ]; then
  rclone copy "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION" --files-from "$w/copy" --no-traverse --immutable --retries 1 --stats-one-line -v || { copied=; status=1; }
else
  echo "archive: nothing new to copy"
fi
`)
	if cfg.Prunes() {
		b.WriteString(`: >"$w/pruning"
while read -r n; do
  case $old in *"$nl./$n$nl"*) echo "$n" >>"$w/pruning" ;; esac
done <"$w/prune"
if [ -z "$copied" ]; then
  echo "archive: the copy failed: nothing is removed from the disk this round"
elif [ -s "$w/pruning" ]; then
  rclone move "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION" --files-from "$w/pruning" --no-traverse --checksum --immutable --retries 1 --stats-one-line -v || status=1
fi
`)
	}
	b.WriteString(`exit $status`)
	return b.String()
}

// ArchiverRestore puts the archive back on the disk, run by hand through the archiver container
// (docs/archive.md: kubectl exec ... sh -c 'eval "$ARCHIVE_RESTORE"'; archiverEnv hands it over as
// ARCHIVE_RESTORE). It overwrites nothing blindly and never deletes an object: for each object the disk
// lacks or holds with other bytes (size, then MD5), it downloads the object into ARCHIVE_STAGING (on the
// data disk), checks it with gzip -t (one that fails is CORRUPT IN BUCKET and never used), then
//   - the disk lacks the file: moves it into ARCHIVE_SOURCE;
//   - the disk's file, decompressed, is a strict prefix of the object's (the file loklak had open when
//     the snapshot was taken, closed and archived later): replaces it with the object, and says so;
//   - the object's content is a prefix of the disk's (or the same): keeps the disk's;
//   - neither: keeps the disk's, leaves the object in ARCHIVE_STAGING, and reports a CONFLICT.
//
// A file whose .txt is beside it on the disk (loklak is compressing it) is skipped, to run again. With
// pruning, only objects younger than ARCHIVE_PRUNE_AGE_MINUTES come back (the older ones would be pruned
// again). A second run changes nothing. It exits non-zero when anything was not restored.
func ArchiverRestore(cfg ArchiveConfig) string {
	maxAge := ""
	if cfg.Prunes() {
		maxAge = ` --max-age "${ARCHIVE_PRUNE_AGE_MINUTES}m"`
	}
	return `set -u
` + appletFallback + `src=$ARCHIVE_SOURCE
stage=$ARCHIVE_STAGING
mkdir -p "$stage" || exit 1
w=$(mktemp -d) || exit 1
trap 'rm -rf "$w"' EXIT
rclone lsf "$ARCHIVE_DESTINATION" --files-only --format sph --hash MD5 --separator ' ' --include '/messages_*.txt.gz'` + maxAge + ` --retries 1 >"$w/bucket" || {
  echo "restore: could not list $ARCHIVE_DESTINATION: nothing changed"; exit 1; }
printf '\037\213' >"$w/magic"
size() { set -- $(ls -ln "$1"); echo "$5"; }
md5() { set -- $(md5sum <"$1"); echo "$1"; }
# prefix A B N: the first N bytes of A and of B, decompressed, are the same N bytes.
prefix() {
  rm -f "$w/fifo" && mkfifo "$w/fifo" || return 2
  gzip -dc "$1" 2>/dev/null | head -c "$3" >"$w/fifo" &
  gzip -dc "$2" 2>/dev/null | head -c "$3" | cmp -s - "$w/fifo"
  r=$?
  wait
  return $r
}
restored=0 replaced=0 same=0 kept=0 failed=0
while read -r osize name omd5; do
  l=$src/$name
  s=$stage/$name
  if [ -e "${l%.gz}" ]; then
    echo "restore: SKIPPED $name: ${name%.gz} is beside it on the disk, so loklak is compressing it; run the restore again once ${name%.gz} is gone"
    failed=$((failed + 1)); continue
  fi
  if [ -e "$l" ] && [ "$(size "$l")" = "$osize" ] && [ -n "${omd5:-}" ] && [ "$(md5 "$l")" = "$omd5" ]; then
    same=$((same + 1)); continue
  fi
  if ! { [ -e "$s" ] && [ -n "${omd5:-}" ] && [ "$(md5 "$s")" = "$omd5" ]; }; then
    rm -f "$s"
    rclone copyto "$ARCHIVE_DESTINATION/$name" "$s" --retries 1 || {
      echo "restore: could not download $name: nothing changed for it"; failed=$((failed + 1)); continue; }
  fi
  if ! err=$(gzip -t "$s" 2>&1); then
    echo "restore: CORRUPT IN BUCKET: $name is not a complete gzip stream ($err); not used, the disk keeps what it has"
    rm -f "$s"; failed=$((failed + 1)); continue
  fi
  if [ ! -e "$l" ]; then
    mv "$s" "$l" || { failed=$((failed + 1)); continue; }
    echo "restore: restored $name"; restored=$((restored + 1)); continue
  fi
  if cmp -s "$s" "$l"; then
    rm -f "$s"; same=$((same + 1)); continue
  fi
  lz=$(gzip -dc "$l" 2>/dev/null | wc -c)
  oz=$(gzip -dc "$s" | wc -c)
  if [ "$lz" -lt "$oz" ] && head -c 2 "$l" | cmp -s - "$w/magic" && prefix "$l" "$s" "$lz"; then
    mv "$s" "$l" || { failed=$((failed + 1)); continue; }
    echo "restore: REPLACED $name: the disk held the first $lz of its $oz bytes (decompressed), the part written before the snapshot; it now holds the bucket's complete copy"
    replaced=$((replaced + 1))
  elif [ "$oz" -le "$lz" ] && prefix "$s" "$l" "$oz"; then
    rm -f "$s"
    echo "restore: kept the disk's $name: the bucket's copy holds only the first $oz of its $lz bytes (decompressed)"
    kept=$((kept + 1))
  else
    echo "restore: CONFLICT: $name: the disk's copy ($lz bytes decompressed) and the bucket's ($oz) differ and neither begins the other; the disk keeps its own, the bucket's is in $s: compare them"
    failed=$((failed + 1))
  fi
done <"$w/bucket"
echo "restore: $restored restored, $replaced replaced by the bucket's complete copy, $same already there, $kept kept, $failed not restored"
[ "$failed" -eq 0 ]`
}

// archiverEnv configures rclone's remote from the environment (no config file): Cloud Storage with
// uniform bucket-level access (no object ACLs), without the bucket-exists check (the archiver may not
// read bucket metadata), and Application Default Credentials, which on GKE is the pod's Workload
// Identity; with an endpoint (an emulator), no credentials. HOME is the writable /tmp (the archiver's
// user has no home in the image).
func archiverEnv(bucket pulumi.StringOutput, cfg ArchiveConfig) corev1.EnvVarArray {
	env := corev1.EnvVarArray{
		envVar("ARCHIVE_SOURCE", DataPath+"/"+ArchivePrefix),
		&corev1.EnvVarArgs{Name: pulumi.String("ARCHIVE_DESTINATION"), Value: pulumi.Sprintf("%s:%s/%s", archiveRemote, bucket, ArchivePrefix)},
		envVar("ARCHIVE_MIN_AGE_MINUTES", strconv.Itoa(cfg.MinAgeMinutes)),
		envVar("ARCHIVE_STAGING", DataPath+"/"+ArchiveStaging),
		envVar("ARCHIVE_INTERVAL", strconv.Itoa(cfg.IntervalSeconds)),
		envVar("ARCHIVE_PRUNE_AGE_MINUTES", strconv.Itoa(cfg.PruneAfterDays*24*60)),
		envVar("ARCHIVE_RESTORE", ArchiverRestore(cfg)),
		envVar("HOME", archiverTmp),
		// No config file: rclone takes os.DevNull as an empty in-memory config (fs/config SetConfigPath).
		envVar("RCLONE_CONFIG", "/dev/null"),
		envVar("RCLONE_CONFIG_ARCHIVE_TYPE", "google cloud storage"),
		envVar("RCLONE_CONFIG_ARCHIVE_BUCKET_POLICY_ONLY", "true"),
		envVar("RCLONE_CONFIG_ARCHIVE_NO_CHECK_BUCKET", "true"),
	}
	if cfg.Endpoint != "" {
		return append(env, envVar("RCLONE_CONFIG_ARCHIVE_ENDPOINT", cfg.Endpoint), envVar("RCLONE_CONFIG_ARCHIVE_ANONYMOUS", "true"))
	}
	return append(env, envVar("RCLONE_CONFIG_ARCHIVE_ENV_AUTH", "true"))
}

// archiverContainer is the archiver, an ordinary container of loklak's pod (in Containers, not
// InitContainers: loklak must start and write even when this image cannot be pulled), with loklak's
// least privilege plus a read-only root filesystem and a user that is not root.
func archiverContainer(args ArchiverArgs) *corev1.ContainerArgs {
	cfg := args.Config
	security := noPrivilege(true)
	security.RunAsNonRoot, security.RunAsUser, security.RunAsGroup = pulumi.Bool(true), pulumi.Int(ArchiverUID), pulumi.Int(ArchiverUID)
	return &corev1.ContainerArgs{
		Name:  pulumi.String(archiverName),
		Image: pulumi.String(cfg.ArchiverImage),
		// Pulled only when the node lacks it, tag or digest: a restart never asks the registry (Docker
		// Hub's pull limits), and a registry that is down keeps no restart waiting. A new tag is a new
		// image name, pulled once.
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Command:         pulumi.StringArray{pulumi.String("/bin/sh"), pulumi.String("-c"), pulumi.String(archiverScript(cfg))},
		Env:             archiverEnv(args.BucketName, cfg),
		VolumeMounts: corev1.VolumeMountArray{
			// Read-write, as loklak's: pruning removes files, and the restore (ArchiverRestore) puts
			// archived files back through this container. Copying alone never writes here.
			&corev1.VolumeMountArgs{Name: pulumi.String(dataVolumeName), MountPath: pulumi.String(DataPath)},
			&corev1.VolumeMountArgs{Name: pulumi.String(archiverName + "-tmp"), MountPath: pulumi.String(archiverTmp)},
		},
		// rclone holds a chunk (16 MiB by default for Cloud Storage) per transfer, 4 transfers at once.
		// gzip -t of a new file (about 12 s of CPU for a 500 MB day) runs at the CPU limit.
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("128Mi"), "ephemeral-storage": pulumi.String("64Mi")},
			Limits:   pulumi.StringMap{"cpu": pulumi.String("500m"), "memory": pulumi.String("256Mi"), "ephemeral-storage": pulumi.String("256Mi")},
		},
		SecurityContext: security,
	}
}

// archiverTmpVolume backs archiverTmp.
func archiverTmpVolume() *corev1.VolumeArgs {
	return &corev1.VolumeArgs{
		Name:     pulumi.String(archiverName + "-tmp"),
		EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")},
	}
}

// newArchiverServiceAccount declares the Kubernetes service account loklak's pod runs as while the
// archiver copies, annotated for Workload Identity: GKE's metadata server then hands the pod tokens of
// the archiver's Google service account. The pod mounts no Kubernetes token: the GKE metadata server
// identifies the pod itself and requests the service account's token from the API server; nothing in
// the pod presents one (cloud.google.com/kubernetes-engine/docs/concepts/workload-identity, "How
// Workload Identity Federation for GKE works"; not verified on GKE here).
func newArchiverServiceAccount(ctx *pulumi.Context, namespace pulumi.StringOutput, labels pulumi.StringMap, email pulumi.StringOutput, opts ...pulumi.ResourceOption) (*corev1.ServiceAccount, error) {
	return corev1.NewServiceAccount(ctx, ArchiverKubernetesServiceAccount, &corev1.ServiceAccountArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(ArchiverKubernetesServiceAccount), Namespace: namespace, Labels: labels,
			Annotations: pulumi.StringMap{"iam.gke.io/gcp-service-account": email},
		},
		AutomountServiceAccountToken: pulumi.Bool(false),
	}, opts...)
}
