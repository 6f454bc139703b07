package infra

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	// ServerName names the Deployment, its container's app label and the Service.
	ServerName = "loklak-server"
	// StatusPath answers once loklak is up (StatusService).
	StatusPath = "/api/status.json"
	// probePeriodSeconds is how often the startup probe asks; startupTimeoutSeconds / period = attempts.
	// Once a second: a refused connection costs the starting JVM nothing, and every second between
	// loklak answering and the probe noticing is a second /dump/ is down after each restart (the daily
	// rotation, an image update).
	probePeriodSeconds = 1
	// readinessPeriodSeconds is how often the readiness probe asks once loklak has started: the first
	// readiness answer puts the pod behind the Service, so it bounds the gap after the startup probe.
	// readinessFailureThreshold times it (30 s) is how long a busy loklak may answer slowly before it
	// leaves the Service.
	readinessPeriodSeconds    = 3
	readinessFailureThreshold = 10
)

// Server is loklak_server: one pod on the dumps claim, a Service that reaches /dump/, and a
// NetworkPolicy that admits only that port.
type Server struct {
	pulumi.ResourceState

	Deployment *appsv1.Deployment
	Service    *corev1.Service
	// DumpURL is where /dump/ answers: the load balancer's address, or the in-cluster DNS name.
	DumpURL pulumi.StringOutput
}

// ServerArgs wires the server to its namespace and claim by their outputs.
type ServerArgs struct {
	Namespace pulumi.StringOutput
	ClaimName pulumi.StringOutput
	Config    ServerConfig
	Service   ServiceConfig
	// LoadBalancerIP is the static address the LoadBalancer asks for; nil for an ephemeral one.
	LoadBalancerIP pulumi.StringInput
	// Archiver, when set, runs the archiver sidecar (archiver.go) under a Kubernetes service account
	// that Workload Identity maps to ArchiverAccountEmail.
	Archiver             *ArchiverArgs
	ArchiverAccountEmail pulumi.StringOutput
}

// NewServer declares the loklak Deployment, its Service and its NetworkPolicy.
func NewServer(ctx *pulumi.Context, name string, args ServerArgs, opts ...pulumi.ResourceOption) (*Server, error) {
	s := &Server{}
	if err := ctx.RegisterComponentResource("loklak-dumps:app:Server", name, s, opts...); err != nil {
		return nil, err
	}
	parent := pulumi.Parent(s)
	c := args.Config
	labels := pulumi.StringMap{
		"app.kubernetes.io/name":    pulumi.String(ServerName),
		"app.kubernetes.io/part-of": pulumi.String("loklak-dumps"),
	}
	selector := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(ServerName)}
	httpProbe := &corev1.HTTPGetActionArgs{Path: pulumi.String(StatusPath), Port: pulumi.String("http")}

	volumes := corev1.VolumeArray{&corev1.VolumeArgs{
		Name:                  pulumi.String(dataVolumeName),
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{ClaimName: args.ClaimName},
	}}
	var archiver corev1.ContainerArray
	podSecurity := &corev1.PodSecurityContextArgs{
		SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
	// Named even when it is the namespace's default: a field the program stops sending is not enough.
	// The API server keeps the deprecated spec.serviceAccount (an alias it fills in) and copies it back
	// into an empty serviceAccountName, so turning the archiver off would start pods under the archiver's
	// service account, which the same update deletes: "error looking up service account" (seen on the
	// real node).
	var serviceAccountName pulumi.StringPtrInput = pulumi.String("default")
	if args.Archiver != nil {
		ksa, err := newArchiverServiceAccount(ctx, args.Namespace, labels, args.ArchiverAccountEmail, parent)
		if err != nil {
			return nil, err
		}
		serviceAccountName = ksa.Metadata.Name()
		archiver = corev1.ContainerArray{archiverContainer(*args.Archiver)}
		volumes = append(volumes, archiverTmpVolume())
		// The archiver runs as ArchiverUID, not root: with this fsGroup the kubelet gives the volume's
		// files the group and its directories group write (and setgid, so loklak's new files get the
		// group too), which is what reading loklak's root-owned 0644 dumps and pruning them from dump/own
		// takes. "Always": at every mount, because loklak creates dump/own (0755) after the first mount
		// of a new disk; the walk costs a chown and a chmod per file on the volume at every pod start (docs/archive.md).
		podSecurity.FsGroup = pulumi.Int(ArchiverUID)
		podSecurity.FsGroupChangePolicy = pulumi.String("Always")
	}

	dep, err := appsv1.NewDeployment(ctx, ServerName, &appsv1.DeploymentArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ServerName), Namespace: args.Namespace, Labels: labels},
		Spec: &appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(c.Replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector},
			// Recreate, not RollingUpdate: the dumps disk is ReadWriteOnce. A rolling update starts the new
			// pod before the old one stops; on another node it hangs forever on "Multi-Attach error".
			// Recreate stops the old pod first, so the disk detaches before the new pod mounts it.
			Strategy: &appsv1.DeploymentStrategyArgs{Type: pulumi.String("Recreate")},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{
					// Neither loklak nor the archiver talks to the Kubernetes API: no token in the pod.
					AutomountServiceAccountToken: pulumi.Bool(false),
					ServiceAccountName:           serviceAccountName,
					SecurityContext:              podSecurity,
					// The archiver is an ordinary container after loklak's, not a native sidecar: the
					// kubelet starts loklak even when the archiver's image cannot be pulled (a native
					// sidecar would hold loklak in Init). See archiver.go for what that costs.
					Containers: append(corev1.ContainerArray{&corev1.ContainerArgs{
						Name:  pulumi.String("loklak"),
						Image: pulumi.String(c.Image),
						// A tag can move (latest-development does, every build): pull on every start, so a
						// restart runs what the tag names now. A digest cannot move: the cached copy is it.
						ImagePullPolicy: pulumi.String(pullPolicy(c.Image)),
						Ports: corev1.ContainerPortArray{&corev1.ContainerPortArgs{
							Name: pulumi.String("http"), ContainerPort: pulumi.Int(c.HTTPPort), Protocol: pulumi.String("TCP"),
						}},
						// loklak reads config from env with "." spelled "_"; PORT and ENVXmx are its own overrides.
						Env: corev1.EnvVarArray{
							envVar("PORT", strconv.Itoa(c.HTTPPort)),
							envVar("ENVXmx", c.JavaHeap),
							envVar("dump_write_enabled", strconv.FormatBool(c.DumpWriteEnabled)),
						},
						VolumeMounts: corev1.VolumeMountArray{&corev1.VolumeMountArgs{
							Name: pulumi.String(dataVolumeName), MountPath: pulumi.String(DataPath),
						}},
						// The JVM starts slowly: the startup probe gives it startupTimeoutSeconds before the
						// liveness probe may restart it.
						StartupProbe: &corev1.ProbeArgs{
							HttpGet:          httpProbe,
							PeriodSeconds:    pulumi.Int(probePeriodSeconds),
							TimeoutSeconds:   pulumi.Int(5),
							FailureThreshold: pulumi.Int(startupAttempts(c.StartupTimeoutSeconds)),
						},
						ReadinessProbe: &corev1.ProbeArgs{
							HttpGet: httpProbe, PeriodSeconds: pulumi.Int(readinessPeriodSeconds), TimeoutSeconds: pulumi.Int(5),
							FailureThreshold: pulumi.Int(readinessFailureThreshold),
						},
						// Liveness asks only whether the JVM still accepts connections, and gives it two
						// minutes: a server busy harvesting may answer /api/status.json slowly, which takes
						// it out of the Service (readiness) but must not get it killed.
						LivenessProbe: &corev1.ProbeArgs{
							TcpSocket:     &corev1.TCPSocketActionArgs{Port: pulumi.String("http")},
							PeriodSeconds: pulumi.Int(20), TimeoutSeconds: pulumi.Int(10), FailureThreshold: pulumi.Int(6),
						},
						Resources: &corev1.ResourceRequirementsArgs{
							Requests: pulumi.StringMap{
								"cpu": pulumi.String(c.CPURequest), "memory": pulumi.String(c.MemoryRequest),
								"ephemeral-storage": pulumi.String(c.EphemeralStorageRequest),
							},
							Limits: pulumi.StringMap{
								"cpu": pulumi.String(c.CPULimit), "memory": pulumi.String(c.MemoryLimit),
								"ephemeral-storage": pulumi.String(c.EphemeralStorageLimit),
							},
						},
						// No more power than a Java web server needs: it binds a port above 1024 and writes
						// files it owns, so no capability and no privilege escalation.
						// Its root filesystem stays writable: the image has not been shown to run without.
						SecurityContext: noPrivilege(false),
					}}, archiver...),
					Volumes: volumes,
				},
			},
		},
	}, parent, pulumi.Timeouts(rolloutTimeouts(c.StartupTimeoutSeconds)),
		// Recreate's promise across a replacement too. A change that replaces the Deployment (a new
		// namespace, a new cluster identity) would otherwise create the new one before deleting the
		// old: two loklak pods on one disk. The provider deletes with foreground propagation and waits
		// until the Deployment is gone, which is after its pods are gone.
		pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}

	svc, err := corev1.NewService(ctx, ServerName, &corev1.ServiceArgs{
		Metadata: &metav1.ObjectMetaArgs{
			Name: pulumi.String(ServerName), Namespace: args.Namespace, Labels: labels,
			Annotations: serviceAnnotations(args.Service),
		},
		Spec: &corev1.ServiceSpecArgs{
			Type:           pulumi.String(args.Service.Type),
			LoadBalancerIP: args.LoadBalancerIP,
			// Select the pods through the Deployment's output, so the Service follows the Deployment.
			Selector: dep.Spec.Selector().MatchLabels(),
			Ports: corev1.ServicePortArray{&corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(args.Service.Port), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, parent)
	if err != nil {
		return nil, err
	}

	// Only the HTTP port is reachable; loklak's egress (harvesting) stays open.
	_, err = networkingv1.NewNetworkPolicy(ctx, ServerName, &networkingv1.NetworkPolicyArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(ServerName), Namespace: args.Namespace, Labels: labels},
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: dep.Spec.Selector().MatchLabels()},
			PolicyTypes: pulumi.StringArray{pulumi.String("Ingress")},
			Ingress: networkingv1.NetworkPolicyIngressRuleArray{&networkingv1.NetworkPolicyIngressRuleArgs{
				Ports: networkingv1.NetworkPolicyPortArray{&networkingv1.NetworkPolicyPortArgs{
					Port: pulumi.Int(c.HTTPPort), Protocol: pulumi.String("TCP"),
				}},
			}},
		},
	}, parent)
	if err != nil {
		return nil, err
	}

	s.Deployment, s.Service = dep, svc
	s.DumpURL = dumpURL(svc, args.Service)
	return s, ctx.RegisterResourceOutputs(s, pulumi.Map{
		"deploymentName": dep.Metadata.Name(),
		"serviceName":    svc.Metadata.Name(),
		"dumpUrl":        s.DumpURL,
	})
}

// serviceAnnotations skips the provider's Service await unless the Service is a LoadBalancer. For
// ClusterIP and NodePort that await only re-proves what the Deployment's await already proved (a ready
// pod behind the selector), and pulumi-kubernetes sleeps a fixed 10 s after every Endpoints change
// before it answers (pkg/await/service.go): half of an `up` here. A LoadBalancer keeps the await,
// which is what yields the address behind the dumpUrl output.
func serviceAnnotations(cfg ServiceConfig) pulumi.StringMap {
	if cfg.Type == "LoadBalancer" {
		return nil
	}
	return pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}
}

// pullPolicy is IfNotPresent for an image pinned by digest and Always for one named by a tag.
func pullPolicy(image string) string {
	if strings.Contains(image, "@sha256:") {
		return "IfNotPresent"
	}
	return "Always"
}

// noPrivilege is the security context every container of the stack starts from: no capability and no
// privilege escalation, and, with readOnlyRoot, a read-only root filesystem. Without it the field stays
// unset, as loklak's container has always had it (an explicit false would change its pod template).
func noPrivilege(readOnlyRoot bool) *corev1.SecurityContextArgs {
	sc := &corev1.SecurityContextArgs{
		AllowPrivilegeEscalation: pulumi.Bool(false),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
	}
	if readOnlyRoot {
		sc.ReadOnlyRootFilesystem = pulumi.Bool(true)
	}
	return sc
}

func envVar(name, value string) *corev1.EnvVarArgs {
	return &corev1.EnvVarArgs{Name: pulumi.String(name), Value: pulumi.String(value)}
}

// startupAttempts turns a start-up allowance in seconds into a probe failure threshold (rounded up).
func startupAttempts(timeoutSeconds int) int {
	return (timeoutSeconds + probePeriodSeconds - 1) / probePeriodSeconds
}

// dumpURL is the address of /dump/: the load balancer's IP or hostname once it has one, otherwise the
// Service's in-cluster DNS name (reach it with kubectl port-forward).
func dumpURL(svc *corev1.Service, cfg ServiceConfig) pulumi.StringOutput {
	return pulumi.All(svc.Metadata.Name(), svc.Metadata.Namespace(), svc.Status).ApplyT(func(v []any) string {
		name, namespace := deref(v[0]), deref(v[1])
		if st, ok := v[2].(*corev1.ServiceStatus); ok && st != nil && st.LoadBalancer != nil {
			for _, in := range st.LoadBalancer.Ingress {
				if host := cmp.Or(deref(in.Ip), deref(in.Hostname)); host != "" {
					return fmt.Sprintf("http://%s:%d/dump/", host, cfg.Port)
				}
			}
		}
		return fmt.Sprintf("http://%s.%s.svc.cluster.local:%d/dump/", name, namespace, cfg.Port)
	}).(pulumi.StringOutput)
}

func deref(p any) string {
	if s, ok := p.(*string); ok && s != nil {
		return *s
	}
	return ""
}

// rolloutTimeouts is how long the engine waits for a rollout: the JVM's start-up allowance plus five
// minutes for scheduling, attaching the disk and pulling the image, and never less than the provider's
// own ten minutes. Without it a slow start that the probes allow would still fail `up` at ten minutes.
func rolloutTimeouts(startupSeconds int) *pulumi.CustomTimeouts {
	wait := max(10*time.Minute, time.Duration(startupSeconds)*time.Second+5*time.Minute)
	return &pulumi.CustomTimeouts{Create: wait.String(), Update: wait.String()}
}
