package infra

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is what the program reads from the cluster before it declares anything: the facts that decide
// whether a change can be applied whole. Checks (checks.go) refuse a change that Kubernetes would refuse
// halfway, or that would create what the stack must only change.
type Cluster interface {
	// Namespace reports whether the namespace exists and whether this stack created it.
	Namespace(ctx context.Context, name string) (NamespaceState, error)
	// VolumesOnDisk returns the stack's PersistentVolumes (the app.kubernetes.io/part-of=loklak-dumps
	// label) whose CSI volume handle is handle, under whatever name.
	VolumesOnDisk(ctx context.Context, handle string) ([]Volume, error)
}

// NamespaceState is what the checks need to know of a namespace.
type NamespaceState struct {
	Exists bool
	// CreatedByStack: it carries the label app.kubernetes.io/part-of=loklak-dumps, which the stack puts
	// only on a namespace it creates (never on one it only labels, such as prod's web).
	CreatedByStack bool
}

// Volume is a PersistentVolume as the cluster has it now.
type Volume struct {
	Name string
	// Handle is its CSI volume handle (the disk's ID), empty for a volume of another kind.
	Handle string
	// CapacityGiB is spec.capacity.storage in GiB, rounded up; the program writes it as <diskSizeGb>Gi.
	CapacityGiB int64
	// ClusterIdentifier is the clusterIdentifier the stack recorded on it (empty before it did).
	ClusterIdentifier string
}

// clusterTimeout bounds each read: a preview against an unreachable cluster fails in seconds, not minutes.
const clusterTimeout = 30 * time.Second

// kubeCluster reads the cluster through client-go, with the same kubeconfig and context the stack's
// Kubernetes provider gets.
type kubeCluster struct{ client kubernetes.Interface }

// NewKubeCluster connects to the cluster cfg selects: the kubeconfig content or path in cfg.Kubeconfig,
// else the ambient KUBECONFIG or ~/.kube/config as kubectl reads it, with cfg.Context when set. It makes
// no request; errors are a kubeconfig that cannot be loaded.
func NewKubeCluster(cfg KubeConfig) (Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: cfg.Context}
	var loader clientcmd.ClientConfig
	path := expandHome(cfg.Kubeconfig)
	switch {
	case cfg.Kubeconfig == "" || isFile(path):
		// The ambient kubeconfig, or a path, as the provider takes it too (pulumi-kubernetes reads a
		// kubeconfig that names a file, with ~ expanded).
		if cfg.Kubeconfig != "" {
			rules.ExplicitPath = path
		}
		loader = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	case !strings.ContainsAny(cfg.Kubeconfig, "\n{:"):
		return nil, fmt.Errorf("config kubeconfig: %q is neither a kubeconfig nor a file that exists", cfg.Kubeconfig)
	default:
		raw, err := clientcmd.Load([]byte(cfg.Kubeconfig))
		if err != nil {
			return nil, fmt.Errorf("config kubeconfig: not a kubeconfig: %w", err)
		}
		loader = clientcmd.NewNonInteractiveClientConfig(*raw, cfg.Context, overrides, nil)
	}
	rest, err := loader.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		// client-go's own words ("no configuration has been provided, try setting KUBERNETES_MASTER
		// environment variable") point at a variable this stack never reads.
		return nil, fmt.Errorf("no kubeconfig: this stack needs a cluster to deploy to; run `gcloud container clusters get-credentials CLUSTER --zone ZONE` " +
			"(it writes ~/.kube/config), point KUBECONFIG at a kubeconfig file, or set the stack's kubeconfig key " +
			"(`pulumi config set --secret kubeconfig \"$(cat FILE)\"`)")
	}
	if err != nil {
		return nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	return kubeCluster{client: client}, nil
}

// expandHome expands a leading ~ or ~/ to the home directory, as pulumi-kubernetes does for a kubeconfig
// path (provider/util.go, parseKubeconfigString).
func expandHome(path string) string {
	home, err := os.UserHomeDir()
	if err != nil || (path != "~" && !strings.HasPrefix(path, "~/")) {
		return path
	}
	return filepath.Join(home, strings.TrimPrefix(path, "~"))
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

func (k kubeCluster) Namespace(ctx context.Context, name string) (NamespaceState, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	ns, err := k.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return NamespaceState{Exists: true, CreatedByStack: ns.Labels[partOfLabel] == partOf}, nil
	case apierrors.IsNotFound(err):
		return NamespaceState{}, nil
	default:
		return NamespaceState{}, fmt.Errorf("reading namespace %s: %w", name, err)
	}
}

func (k kubeCluster) VolumesOnDisk(ctx context.Context, handle string) ([]Volume, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterTimeout)
	defer cancel()
	// No field selector exists for a volume's handle; the label narrows the list to the stack's own.
	list, err := k.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: partOfLabel + "=" + partOf})
	if err != nil {
		return nil, fmt.Errorf("listing PersistentVolumes: %w", err)
	}
	var out []Volume
	for _, pv := range list.Items {
		if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != CSIDriver || pv.Spec.CSI.VolumeHandle != handle {
			continue
		}
		out = append(out, Volume{Name: pv.Name, Handle: handle, CapacityGiB: capacityGiB(pv),
			ClusterIdentifier: pv.Annotations[ClusterIdentifierAnnotation]})
	}
	return out, nil
}

// capacityGiB is a volume's capacity in GiB, rounded up.
func capacityGiB(pv corev1.PersistentVolume) int64 {
	q, ok := pv.Spec.Capacity[corev1.ResourceStorage]
	if !ok {
		return 0
	}
	const gib = 1 << 30
	return (q.Value() + gib - 1) / gib
}
