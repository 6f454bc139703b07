package infra

import (
	"fmt"
	"strconv"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The dump rotation: a CronJob that restarts loklak once a day, so that its dump file closes.
//
// Why a restart: loklak_server chooses its dump file once, when it starts (JsonRepository's constructor
// calls getCurrentDump, src/org/loklak/tools/storage/JsonRepository.java lines 111-114 and 141-202 at
// loklak/loklak_server f79c657), appends to it for as long as the process runs, and gzips the older
// .txt files only at a start on a later GMT day (lines 147-171); DAO offers no other way to reopen the
// dump (DAO.java line 579 closes it only at shutdown). On GKE a pod runs for weeks between node
// upgrades, so without a restart a file stays open, uncompressed and unarchived for weeks.
//
// What restarts it: `kubectl rollout restart`, the Kubernetes way to restart a Deployment's pods (it
// stamps the pod template with kubectl.kubernetes.io/restartedAt, so the Deployment controller runs a
// normal Recreate rollout: the old pod stops and the disk detaches before the new pod mounts it), then
// `kubectl rollout status`, so a restart that does not bring loklak back fails the Job where a person
// sees it (kubectl get jobs, the CronJob's events) instead of succeeding silently.
//
// With which identity: a service account of its own whose Role allows exactly get, patch, list and
// watch on the one Deployment, by name (RBAC resourceNames; list and watch by name work because kubectl
// rollout status asks with a metadata.name field selector). It cannot read, create or delete anything
// else. Only this Job's pod mounts its token; loklak's pod mounts none.
//
// What it costs: one Recreate rollout a day, so /dump/ is unreachable for loklak's start-up (the JVM's
// start, about a minute for the real loklak, plus attaching the disk when the pod lands on another
// node). That is the price of closing files on a schedule with a loklak that closes them only at start;
// at a quiet hour it is the cheapest way to get a bound (docs/archive.md states it).
//
// The Job's image is Kubernetes' own kubectl image (registry.k8s.io/kubectl, published since v1.28,
// kubernetes/kubernetes#116672): no shell, kubectl as its entrypoint, so each step is one container;
// the restart is an init container and the status wait the main container.

const (
	// RotationName names the CronJob, its service account, Role and RoleBinding.
	RotationName = ServerName + "-dump-rotation"
	// RotationUID is the Job's user and group: kubectl needs no privilege on the node.
	RotationUID = 65532
	// rotationTimeZone is the zone of the schedule; loklak dates its files in GMT.
	rotationTimeZone = "Etc/UTC"
	// rotationKubectl is the kubectl binary in registry.k8s.io/kubectl (its entrypoint).
	rotationKubectl = "kubectl"
)

// DumpRotationArgs wires the rotation to the Deployment it restarts.
type DumpRotationArgs struct {
	Namespace pulumi.StringOutput
	// Deployment is loklak's Deployment name, taken from the Deployment so the rotation follows it.
	Deployment pulumi.StringOutput
	Labels     pulumi.StringMap
	Config     RotationConfig
	// StartupTimeoutSeconds is loklak's start-up allowance; the status wait gives it five minutes more.
	StartupTimeoutSeconds int
}

// DumpRotation is the CronJob and the least-privilege identity it runs as.
type DumpRotation struct {
	pulumi.ResourceState

	CronJob *batchv1.CronJob
}

// RotationSchedule is the CronJob's schedule for a daily restart at hourUTC:00 (in rotationTimeZone).
func RotationSchedule(hourUTC int) string { return fmt.Sprintf("0 %d * * *", hourUTC) }

// RotationCommands are the two kubectl invocations of one rotation, in order: the restart, then the
// wait until the new pod is available (a failure fails the Job). Exported for the tests that run them.
func RotationCommands(namespace, deployment string, startupTimeoutSeconds int) [][]string {
	target := "deployment/" + deployment
	wait := startupTimeoutSeconds + 300
	return [][]string{
		{rotationKubectl, "rollout", "restart", target, "--namespace", namespace},
		{rotationKubectl, "rollout", "status", target, "--namespace", namespace, "--timeout", strconv.Itoa(wait) + "s"},
	}
}

// NewDumpRotation declares the rotation's ServiceAccount, Role, RoleBinding and CronJob.
func NewDumpRotation(ctx *pulumi.Context, name string, args DumpRotationArgs, opts ...pulumi.ResourceOption) (*DumpRotation, error) {
	r := &DumpRotation{}
	if err := ctx.RegisterComponentResource("loklak-dumps:app:DumpRotation", name, r, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(r)
	meta := &metav1.ObjectMetaArgs{Name: pulumi.String(RotationName), Namespace: args.Namespace, Labels: args.Labels}

	sa, err := corev1.NewServiceAccount(ctx, RotationName, &corev1.ServiceAccountArgs{Metadata: meta}, parent)
	if err != nil {
		return nil, err
	}
	role, err := rbacv1.NewRole(ctx, RotationName, &rbacv1.RoleArgs{
		Metadata: meta,
		Rules: rbacv1.PolicyRuleArray{&rbacv1.PolicyRuleArgs{
			ApiGroups:     pulumi.StringArray{pulumi.String("apps")},
			Resources:     pulumi.StringArray{pulumi.String("deployments")},
			ResourceNames: pulumi.StringArray{args.Deployment},
			Verbs:         pulumi.ToStringArray([]string{"get", "patch", "list", "watch"}),
		}},
	}, parent)
	if err != nil {
		return nil, err
	}
	binding, err := rbacv1.NewRoleBinding(ctx, RotationName, &rbacv1.RoleBindingArgs{
		Metadata: meta,
		RoleRef: &rbacv1.RoleRefArgs{
			ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: role.Metadata.Name().Elem(),
		},
		Subjects: rbacv1.SubjectArray{&rbacv1.SubjectArgs{
			Kind: pulumi.String("ServiceAccount"), Name: sa.Metadata.Name().Elem(), Namespace: args.Namespace,
		}},
	}, parent)
	if err != nil {
		return nil, err
	}

	commands := pulumi.All(args.Namespace, args.Deployment).ApplyT(func(v []any) [][]string {
		return RotationCommands(v[0].(string), v[1].(string), args.StartupTimeoutSeconds)
	})
	container := func(containerName string, step int) *corev1.ContainerArgs {
		return &corev1.ContainerArgs{
			Name:  pulumi.String(containerName),
			Image: pulumi.String(args.Config.Image),
			// registry.k8s.io never moves a release tag; a node that has the image does not ask again.
			ImagePullPolicy: pulumi.String("IfNotPresent"),
			Command:         commands.ApplyT(func(c [][]string) []string { return c[step] }).(pulumi.StringArrayOutput),
			// kubectl writes its discovery cache under $HOME/.kube; the root filesystem is read-only.
			Env: corev1.EnvVarArray{envVar("HOME", "/tmp")},
			VolumeMounts: corev1.VolumeMountArray{&corev1.VolumeMountArgs{
				Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp"),
			}},
			Resources: &corev1.ResourceRequirementsArgs{
				Requests: pulumi.StringMap{"cpu": pulumi.String("10m"), "memory": pulumi.String("32Mi"), "ephemeral-storage": pulumi.String("16Mi")},
				Limits:   pulumi.StringMap{"cpu": pulumi.String("200m"), "memory": pulumi.String("128Mi"), "ephemeral-storage": pulumi.String("64Mi")},
			},
			SecurityContext: noPrivilege(true), // the user is the pod's: RotationUID
		}
	}
	// The whole rotation may take the restart plus the status wait; past that the Job is failed.
	deadline := args.StartupTimeoutSeconds + 600
	cron, err := batchv1.NewCronJob(ctx, RotationName, &batchv1.CronJobArgs{
		Metadata: meta,
		Spec: &batchv1.CronJobSpecArgs{
			Schedule: pulumi.String(RotationSchedule(args.Config.HourUTC)),
			TimeZone: pulumi.String(rotationTimeZone),
			// Never two restarts at once; a rotation missed (controller down) still runs within an hour,
			// later than that it waits for the next day rather than restart at a busy hour.
			ConcurrencyPolicy:          pulumi.String("Forbid"),
			StartingDeadlineSeconds:    pulumi.Int(3600),
			SuccessfulJobsHistoryLimit: pulumi.Int(3),
			FailedJobsHistoryLimit:     pulumi.Int(3),
			JobTemplate: &batchv1.JobTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: args.Labels},
				Spec: &batchv1.JobSpecArgs{
					// A failed rotation is not retried: a second restart would only cost another outage.
					BackoffLimit:          pulumi.Int(0),
					ActiveDeadlineSeconds: pulumi.Int(deadline),
					Template: &corev1.PodTemplateSpecArgs{
						Metadata: &metav1.ObjectMetaArgs{Labels: args.Labels},
						Spec: &corev1.PodSpecArgs{
							ServiceAccountName: binding.Subjects.Index(pulumi.Int(0)).Name(),
							// The one pod of the stack that talks to the Kubernetes API.
							AutomountServiceAccountToken: pulumi.Bool(true),
							RestartPolicy:                pulumi.String("Never"),
							SecurityContext: &corev1.PodSecurityContextArgs{
								RunAsNonRoot:   pulumi.Bool(true),
								RunAsUser:      pulumi.Int(RotationUID),
								RunAsGroup:     pulumi.Int(RotationUID),
								SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
							},
							InitContainers: corev1.ContainerArray{container("restart", 0)},
							Containers:     corev1.ContainerArray{container("wait-until-serving", 1)},
							Volumes: corev1.VolumeArray{&corev1.VolumeArgs{
								Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")},
							}},
						},
					},
				},
			},
		},
	}, parent)
	if err != nil {
		return nil, err
	}
	r.CronJob = cron
	return r, ctx.RegisterResourceOutputs(r, pulumi.Map{"cronJobName": cron.Metadata.Name()})
}
