package infra

import (
	"fmt"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The archiver: a native sidecar in loklak's pod (an init container with restartPolicy Always, GA in
// Kubernetes 1.33, beta and on by default since 1.29) that copies loklak's closed dump files into the
// archive bucket with rclone. It runs beside loklak on the same node, so it mounts the same
// ReadWriteOnce claim; it starts before loklak and stops after it.
//
// rclone does the copying and the verifying (github.com/rclone/rclone v1.71.0):
//   - `rclone copy` (and `rclone move` of the files older than archivePruneAfterDays) never deletes
//     anything at the destination; a `sync` would delete objects whose local file was pruned, so it is
//     never used.
//   - --immutable: an object that exists with other bytes is an error, never overwritten (the archiver's
//     roles could not overwrite one anyway); one that exists with the same bytes is skipped, so copying a
//     file twice is not an error.
//   - after each upload rclone compares the object's MD5, as Cloud Storage reports it, with the local
//     file's, and counts a mismatch as a failed transfer; `move` removes a local file only after its
//     transfer succeeded, or when the object already exists with the same size and MD5 (--checksum).
//   - only closed files: loklak appends to messages_YYYYMMDD_*.txt and gzips it to .txt.gz once the day is
//     over; the filter takes only .txt.gz files unmodified for archiveMinAgeMinutes (a file loklak is
//     still gzipping keeps changing).
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
	// archiverTmp is a small writable directory for rclone; the root filesystem is read-only.
	archiverTmp = "/tmp"
)

// ArchiverArgs wires the archiver to the bucket by its output.
type ArchiverArgs struct {
	BucketName pulumi.StringOutput
	Config     ArchiveConfig
}

// archiverScript is the archiver's loop: one round, a line saying how it went, a pause. A person reads
// the log: rclone's -v lines name each file copied (and, when pruning, deleted), its stats line counts
// what was transferred and checked, and a failed round says that nothing unverified was removed.
//
// The shell is the container's PID 1, which ignores SIGTERM unless it traps it: the round and the pause
// run in the background and the loop waits for them, so a stop ends it at once instead of after the
// kubelet's 30 s grace period. An upload cut that way leaves no object, and no local file is removed.
func archiverScript(cfg ArchiveConfig) string {
	return fmt.Sprintf(`set -u
trap 'echo "archiver: stopping"; exit 0' TERM INT
while :; do
  echo "archive round: closed dumps from $ARCHIVE_SOURCE to $ARCHIVE_DESTINATION"
  ( %s ) &
  if wait $!; then
    echo "archive round done"
  else
    echo "archive round FAILED with exit status $?: no local file was removed unless the bucket holds it with the same MD5; next round in ${ARCHIVE_INTERVAL}s"
  fi
  sleep "$ARCHIVE_INTERVAL" &
  wait $!
done
`, ArchiverRound(cfg))
}

// ArchiverRound is one round of the archiver, the shell command its loop runs, reading ARCHIVE_SOURCE,
// ARCHIVE_DESTINATION, ARCHIVE_MIN_AGE and ARCHIVE_PRUNE_AGE from the environment (archiverEnv).
// Exported for the tests that run it against a Cloud Storage emulator.
//
//   - rclone copy --ignore-existing: closed files at least ARCHIVE_MIN_AGE old that the bucket does not
//     have yet; a file already archived is neither read again every round (prod's disk holds 100 GiB of
//     them) nor compared (a file whose modification time changed, with the same bytes, would otherwise
//     fail every round under --immutable). Each upload is checked against the MD5 Cloud Storage reports.
//   - then, when pruning and only if the copy succeeded, rclone move of the files at least
//     ARCHIVE_PRUNE_AGE old: each is compared by MD5 (--checksum) with its object and removed from the
//     disk only when they match (uploaded first if it is missing).
func ArchiverRound(cfg ArchiveConfig) string {
	const filter = ` "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION" --include '/messages_*.txt.gz' --immutable --retries 1 --stats-one-line -v`
	round := `rclone copy` + filter + ` --min-age "$ARCHIVE_MIN_AGE" --ignore-existing`
	if cfg.Prunes() {
		round += ` && rclone move` + filter + ` --min-age "$ARCHIVE_PRUNE_AGE" --checksum`
	}
	return round
}

// archiverEnv configures rclone's remote from the environment (no config file): Cloud Storage with
// uniform bucket-level access (no object ACLs), without the bucket-exists check (the archiver may not
// read bucket metadata), and Application Default Credentials, which on GKE is the pod's Workload
// Identity; with an endpoint (an emulator), no credentials.
func archiverEnv(bucket pulumi.StringOutput, cfg ArchiveConfig) corev1.EnvVarArray {
	env := corev1.EnvVarArray{
		envVar("ARCHIVE_SOURCE", DataPath+"/"+ArchivePrefix),
		&corev1.EnvVarArgs{Name: pulumi.String("ARCHIVE_DESTINATION"), Value: pulumi.Sprintf("%s:%s/%s", archiveRemote, bucket, ArchivePrefix)},
		envVar("ARCHIVE_MIN_AGE", strconv.Itoa(cfg.MinAgeMinutes)+"m"),
		envVar("ARCHIVE_INTERVAL", strconv.Itoa(cfg.IntervalSeconds)),
		envVar("ARCHIVE_PRUNE_AGE", strconv.Itoa(cfg.PruneAfterDays)+"d"),
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

// archiverContainer is the sidecar, with the same least privilege as loklak's container plus a
// read-only root filesystem.
func archiverContainer(args ArchiverArgs) *corev1.ContainerArgs {
	cfg := args.Config
	return &corev1.ContainerArgs{
		Name:            pulumi.String(archiverName),
		Image:           pulumi.String(cfg.ArchiverImage),
		ImagePullPolicy: pulumi.String(pullPolicy(cfg.ArchiverImage)),
		// A native sidecar: restarted whenever it exits, started before loklak, stopped after it.
		RestartPolicy: pulumi.String("Always"),
		Command:       pulumi.StringArray{pulumi.String("/bin/sh"), pulumi.String("-c"), pulumi.String(archiverScript(cfg))},
		Env:           archiverEnv(args.BucketName, cfg),
		VolumeMounts: corev1.VolumeMountArray{
			// Read-write, as loklak's: pruning removes files, and the restore runbook (docs/archive.md)
			// copies archived files back through this container. Copying alone never writes here.
			&corev1.VolumeMountArgs{Name: pulumi.String(dataVolumeName), MountPath: pulumi.String(DataPath)},
			&corev1.VolumeMountArgs{Name: pulumi.String(archiverName + "-tmp"), MountPath: pulumi.String(archiverTmp)},
		},
		// rclone holds a chunk (16 MiB by default for Cloud Storage) per transfer, 4 transfers at once.
		Resources: &corev1.ResourceRequirementsArgs{
			Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("128Mi"), "ephemeral-storage": pulumi.String("64Mi")},
			Limits:   pulumi.StringMap{"cpu": pulumi.String("500m"), "memory": pulumi.String("256Mi"), "ephemeral-storage": pulumi.String("256Mi")},
		},
		SecurityContext: &corev1.SecurityContextArgs{
			AllowPrivilegeEscalation: pulumi.Bool(false),
			Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
			ReadOnlyRootFilesystem:   pulumi.Bool(true),
		},
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
