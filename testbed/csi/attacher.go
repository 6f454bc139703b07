package csi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// The attacher: what kubernetes-csi/external-attacher (csi-attacher, read at e6106024) does for a driver
// whose CSIDriver object says attachRequired: true, written afresh because the module proxy refuses that
// module. kube-controller-manager's attach-detach controller creates a storage.k8s.io/v1 VolumeAttachment
// per (volume, node) and waits for its status; the attacher calls ControllerPublishVolume or
// ControllerUnpublishVolume and writes the outcome there. Where each step comes from:
//
//   - the finalizer and the node-ID annotation: pkg/controller/util.go GetFinalizerName, vaNodeIDAnnotation;
//   - the attach and detach steps and their order: pkg/controller/csi_handler.go syncAttach, csiAttach,
//     syncDetach, csiDetach, markAsDetached, saveAttachError;
//   - the PersistentVolume's finalizer: csi_handler.go addPVFinalizer, SyncNewOrUpdatedPersistentVolume;
//   - the queues, and which updates are not worth a sync: pkg/controller/controller.go
//     NewCSIAttachController, shouldEnqueueVAChange;
//   - the defaults (15 s per call, retries from 1 s doubling to 5 min, resync 10 min, 10 workers):
//     cmd/csi-attacher/main.go.

const (
	// AttacherFinalizer is the finalizer external-attacher puts on the VolumeAttachments it attaches and on
	// their PersistentVolumes: "external-attacher/" and the driver's name with every character outside
	// [a-zA-Z0-9-] replaced by '-' (util.go GetFinalizerName and SanitizeDriverName).
	AttacherFinalizer = "external-attacher/pd-csi-storage-gke-io"
	// NodeIDAnnotation records on a VolumeAttachment the CSI node ID it was attached to, so that a detach
	// still finds it when the node's CSINode no longer names the driver (util.go vaNodeIDAnnotation).
	NodeIDAnnotation = "csi.alpha.kubernetes.io/node-id"
)

// AttacherConfig says which cluster and which plugin the attacher joins.
type AttacherConfig struct {
	// Client reaches the cluster's API server. The attacher reads VolumeAttachments, PersistentVolumes and
	// CSINodes, updates VolumeAttachments (also their status subresource) and PersistentVolumes.
	Client kubernetes.Interface
	// Conn reaches the plugin's Identity and Controller services, as external-attacher reaches its
	// sidecar's socket: grpc.NewClient("unix:"+endpoint, ...). The plugin must be named DriverName and
	// offer PUBLISH_UNPUBLISH_VOLUME.
	Conn grpc.ClientConnInterface
	// Logf, if set, receives one line per attach and detach tried (volume, node, VolumeAttachment, result)
	// and one per PersistentVolume released.
	Logf func(format string, args ...any)
	// Timeout bounds each CSI call (default 15 s, external-attacher's -timeout).
	Timeout time.Duration
	// RetryStart and RetryMax: a VolumeAttachment that failed is tried again after RetryStart, the wait
	// doubling with each failure up to RetryMax (defaults 1 s and 5 min, -retry-interval-start and
	// -retry-interval-max).
	RetryStart, RetryMax time.Duration
	// Resync is how often every VolumeAttachment is looked at again (default 10 min, -resync).
	Resync time.Duration
	// Workers is how many VolumeAttachments are handled at once (default 10, -worker-threads); one
	// VolumeAttachment is never handled by two workers at once.
	Workers int
}

// Attacher acts on the VolumeAttachments whose spec.attacher is DriverName. Make it with NewAttacher and
// call Run once.
type Attacher struct {
	cfg        AttacherConfig
	identity   csi.IdentityClient
	controller csi.ControllerClient
	// publishReadOnly is the plugin's PUBLISH_READONLY capability: without it a request's readonly must be
	// false (the CSI spec; csiAttach).
	publishReadOnly bool

	factory  informers.SharedInformerFactory
	vas      storagelisters.VolumeAttachmentLister
	pvs      corelisters.PersistentVolumeLister
	csiNodes storagelisters.CSINodeLister
	synced   []cache.InformerSynced
	vaQueue  workqueue.TypedRateLimitingInterface[string] // VolumeAttachment names
	pvQueue  workqueue.TypedRateLimitingInterface[string] // PersistentVolume names

	// replaced holds, per VolumeAttachment name, the resourceVersions of the copies that the last
	// successful attach or detach wrote over. A sync that finds one of them in the informer's cache has
	// run before the informer saw the write, and waits for it (the write's update event queues the name
	// again) rather than call ControllerPublishVolume a second time.
	replacedMu sync.Mutex
	replaced   map[string][]string
}

// NewAttacher checks the configuration, fills in the defaults and sets up the informers and queues; it
// talks to neither the cluster nor the plugin.
func NewAttacher(cfg AttacherConfig) (*Attacher, error) {
	if cfg.Client == nil || cfg.Conn == nil {
		return nil, errors.New("csi: the attacher needs a Kubernetes client and a connection to the plugin")
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&cfg.Timeout, 15 * time.Second}, {&cfg.RetryStart, time.Second}, {&cfg.RetryMax, 5 * time.Minute}, {&cfg.Resync, 10 * time.Minute}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 10
	}
	a := &Attacher{
		cfg:        cfg,
		identity:   csi.NewIdentityClient(cfg.Conn),
		controller: csi.NewControllerClient(cfg.Conn),
		factory:    informers.NewSharedInformerFactory(cfg.Client, cfg.Resync),
		replaced:   map[string][]string{},
	}
	newQueue := func(name string) workqueue.TypedRateLimitingInterface[string] {
		return workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryStart, cfg.RetryMax),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: name})
	}
	a.vaQueue, a.pvQueue = newQueue("csi-gce-standin-va"), newQueue("csi-gce-standin-pv")

	vaInformer := a.factory.Storage().V1().VolumeAttachments()
	if _, err := vaInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if va, ok := obj.(*storagev1.VolumeAttachment); ok && va.Spec.Attacher == DriverName {
				a.vaQueue.Add(va.Name)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*storagev1.VolumeAttachment)
			va, ok2 := newObj.(*storagev1.VolumeAttachment)
			if ok1 && ok2 && va.Spec.Attacher == DriverName && worthSyncing(old, va) {
				a.vaQueue.Add(va.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			va, ok := obj.(*storagev1.VolumeAttachment)
			if !ok {
				return
			}
			a.forget(va.Name)
			// The VolumeAttachment is gone: its PersistentVolume may be waiting for that to be deleted.
			if va.Spec.Source.PersistentVolumeName != nil {
				a.pvQueue.Add(*va.Spec.Source.PersistentVolumeName)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("csi: watching VolumeAttachments: %w", err)
	}
	pvInformer := a.factory.Core().V1().PersistentVolumes()
	pvChanged := func(obj any) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok && pv.DeletionTimestamp != nil && slices.Contains(pv.Finalizers, AttacherFinalizer) {
			a.pvQueue.Add(pv.Name)
		}
	}
	if _, err := pvInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    pvChanged,
		UpdateFunc: func(_, obj any) { pvChanged(obj) },
	}); err != nil {
		return nil, fmt.Errorf("csi: watching PersistentVolumes: %w", err)
	}
	csiNodeInformer := a.factory.Storage().V1().CSINodes()
	a.vas, a.pvs, a.csiNodes = vaInformer.Lister(), pvInformer.Lister(), csiNodeInformer.Lister()
	a.synced = []cache.InformerSynced{vaInformer.Informer().HasSynced, pvInformer.Informer().HasSynced, csiNodeInformer.Informer().HasSynced}
	return a, nil
}

// worthSyncing is false for an update that changed nothing but status.attachError or detachError: the
// attacher wrote those itself, and acting on them would defeat the backoff (shouldEnqueueVAChange). A
// resync (same resourceVersion) is worth a sync.
func worthSyncing(old, va *storagev1.VolumeAttachment) bool {
	if old.ResourceVersion == va.ResourceVersion {
		return true
	}
	other := va.DeepCopy()
	other.ResourceVersion, other.ManagedFields = old.ResourceVersion, old.ManagedFields
	other.Status.AttachError, other.Status.DetachError = old.Status.AttachError, old.Status.DetachError
	return !equality.Semantic.DeepEqual(old, other)
}

// Run checks that the plugin is the PD CSI driver and can attach, then acts on VolumeAttachments until ctx
// ends. The VolumeAttachments in hand then are finished (each within a few times Timeout, so that a disk
// attached is also recorded as attached) before Run returns nil; the informers' goroutines end on their
// own. It returns an error only if the plugin does not answer as DriverName with
// PUBLISH_UNPUBLISH_VOLUME. Until the API server has answered the informers' lists nothing is attached,
// and every 30 s a line says so.
func (a *Attacher) Run(ctx context.Context) error {
	defer a.vaQueue.ShutDown()
	defer a.pvQueue.ShutDown()
	if err := a.probe(ctx); err != nil {
		return err
	}
	// The informers stop when ctx ends. Run does not wait for them (factory.Shutdown): while the API
	// server is unreachable, client-go v0.37.2's reflector sleeps out its backoff (up to 60 s,
	// reflector.go watchList) before it looks at the stop channel, and that would hold up the stop.
	a.factory.Start(ctx.Done())
	if !a.waitForLists(ctx) {
		return nil // stopped before the API server answered
	}
	var wg sync.WaitGroup
	work := context.WithoutCancel(ctx) // an item in hand is finished after ctx ends
	for range a.cfg.Workers {
		wg.Add(2)
		go func() { defer wg.Done(); a.drain(work, a.vaQueue, a.syncVA) }()
		go func() { defer wg.Done(); a.drain(work, a.pvQueue, a.syncPV) }()
	}
	<-ctx.Done()
	a.vaQueue.ShutDown()
	a.pvQueue.ShutDown()
	wg.Wait()
	return nil
}

// waitForLists waits until the informers have listed the cluster's objects, and says so; false means
// ctx ended first.
func (a *Attacher) waitForLists(ctx context.Context) bool {
	synced := make(chan bool, 1)
	go func() { synced <- cache.WaitForCacheSync(ctx.Done(), a.synced...) }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case ok := <-synced:
			if ok {
				a.logf("attacher: listed VolumeAttachments, PersistentVolumes and CSINodes; acting on those of %s", DriverName)
			}
			return ok
		case <-tick.C:
			a.logf("attacher: still waiting to list VolumeAttachments, PersistentVolumes and CSINodes (is the API server up, and may this client list them?)")
		}
	}
}

// probe asks the plugin its name and controller capabilities, as csi-attacher's main does before it starts.
func (a *Attacher) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	info, err := a.identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return fmt.Errorf("csi: the attacher asking the plugin its name: %w", err)
	}
	if info.GetName() != DriverName {
		return fmt.Errorf("csi: the attacher acts for %s, and the plugin is %q", DriverName, info.GetName())
	}
	caps, err := a.controller.ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("csi: the attacher asking the plugin's controller capabilities: %w", err)
	}
	publish := false
	for _, c := range caps.GetCapabilities() {
		switch c.GetRpc().GetType() {
		case csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME:
			publish = true
		case csi.ControllerServiceCapability_RPC_PUBLISH_READONLY:
			a.publishReadOnly = true
		}
	}
	if !publish {
		return fmt.Errorf("csi: plugin %s does not offer PUBLISH_UNPUBLISH_VOLUME: it cannot attach", DriverName)
	}
	return nil
}

// drain handles the queue's keys until it shuts down: a key that fails comes back after the rate
// limiter's wait, one that succeeds has its backoff reset.
func (a *Attacher) drain(ctx context.Context, q workqueue.TypedRateLimitingInterface[string], sync func(context.Context, string) error) {
	for {
		key, quit := q.Get()
		if quit {
			return
		}
		func() {
			defer q.Done(key)
			ctx, cancel := context.WithTimeout(ctx, 4*a.cfg.Timeout) // API writes around one CSI call
			defer cancel()
			if err := sync(ctx, key); err != nil {
				q.AddRateLimited(key)
				return
			}
			q.Forget(key)
		}()
	}
}

func (a *Attacher) logf(format string, args ...any) {
	if a.cfg.Logf != nil {
		a.cfg.Logf(format, args...)
	}
}

// syncVA attaches a VolumeAttachment of DriverName's that is not being deleted, and detaches one that is.
// Its error only asks for a retry; the VolumeAttachment's status already says what failed.
func (a *Attacher) syncVA(ctx context.Context, name string) error {
	va, err := a.vas.Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case va.Spec.Attacher != DriverName, a.stale(va):
		return nil
	case va.DeletionTimestamp == nil:
		return a.attach(ctx, va)
	}
	return a.detach(ctx, va)
}

// wrote records that a successful attach or detach wrote over these versions of the VolumeAttachment.
func (a *Attacher) wrote(name string, versions ...string) {
	a.replacedMu.Lock()
	defer a.replacedMu.Unlock()
	a.replaced[name] = versions
}

// stale says whether the informer's copy is one that a successful attach or detach has written over.
func (a *Attacher) stale(va *storagev1.VolumeAttachment) bool {
	a.replacedMu.Lock()
	defer a.replacedMu.Unlock()
	return slices.Contains(a.replaced[va.Name], va.ResourceVersion)
}

func (a *Attacher) forget(name string) {
	a.replacedMu.Lock()
	defer a.replacedMu.Unlock()
	delete(a.replaced, name)
}

// target is what a VolumeAttachment asks to attach: the volume's CSI handle, the node's CSI ID, and the
// rest of the ControllerPublishVolume request.
type target struct {
	handle, nodeID string
	readOnly       bool
	capability     *csi.VolumeCapability
	attributes     map[string]string
}

// describe names the volume and node for a log line, as far as they are known.
func describe(va *storagev1.VolumeAttachment, t target) string {
	volume := t.handle
	switch {
	case volume != "":
	case va.Spec.Source.PersistentVolumeName != nil:
		volume = "PersistentVolume " + *va.Spec.Source.PersistentVolumeName
	default:
		volume = "(inline volume spec)"
	}
	node := va.Spec.NodeName
	if t.nodeID != "" {
		node += " (" + t.nodeID + ")"
	}
	return fmt.Sprintf("volume %s, node %s, VolumeAttachment %s", volume, node, va.Name)
}

// attach publishes the volume to the node (syncAttach, csiAttach): everything that can be checked is
// checked before the finalizers are added, so that a VolumeAttachment refused early can be deleted freely.
// On success status.attached is true and status.attachmentMetadata is the publish context; on failure
// status.attachError holds the error (the plugin's, as "rpc error: code = … desc = …", as
// external-attacher records it) and the caller retries with backoff.
func (a *Attacher) attach(ctx context.Context, va *storagev1.VolumeAttachment) error {
	if va.Status.Attached {
		return nil
	}
	var t target
	var resp *csi.ControllerPublishVolumeResponse
	versions := []string{va.ResourceVersion}
	err := func() error {
		pv, err := a.volume(va)
		if err != nil {
			return err
		}
		if t, err = a.targetOf(va, &pv.Spec, false); err != nil {
			return err
		}
		if pv.DeletionTimestamp != nil {
			return fmt.Errorf("PersistentVolume %q is marked for deletion", pv.Name)
		}
		if err := a.holdPV(ctx, pv); err != nil {
			return fmt.Errorf("could not add the finalizer to PersistentVolume %q: %w", pv.Name, err)
		}
		if va, err = a.holdVA(ctx, va, t.nodeID); err != nil {
			return fmt.Errorf("could not add the finalizer to VolumeAttachment %q: %w", va.Name, err)
		}
		versions = append(versions, va.ResourceVersion)
		cctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
		resp, err = a.controller.ControllerPublishVolume(cctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: t.handle, NodeId: t.nodeID, VolumeCapability: t.capability, Readonly: t.readOnly, VolumeContext: t.attributes})
		return err
	}()
	if err != nil {
		saved := a.saveError(ctx, va, err)
		a.logf("attach: %s: failed (attempt %d, retried with backoff): %v%s", describe(va, t), a.vaQueue.NumRequeues(va.Name)+1, err, saved)
		return err
	}
	_, over, err := a.writeVA(ctx, va, true, func(va *storagev1.VolumeAttachment) {
		va.Status.Attached, va.Status.AttachmentMetadata, va.Status.AttachError = true, resp.GetPublishContext(), nil
	})
	if err != nil {
		a.logf("attach: %s: attached, but recording it failed (retried): %v", describe(va, t), err)
		return fmt.Errorf("recording VolumeAttachment %q as attached: %w", va.Name, err)
	}
	a.wrote(va.Name, append(versions, over...)...)
	a.logf("attach: %s: attached", describe(va, t))
	return nil
}

// detach unpublishes the volume from the node (syncDetach, csiDetach, markAsDetached). A VolumeAttachment
// without the finalizer was never attached by this attacher, or is already detached. On success the
// finalizer is removed first (the API server then deletes the object), then status.attached is cleared
// if the object is still there; on failure status.detachError holds the error and the caller retries.
func (a *Attacher) detach(ctx context.Context, va *storagev1.VolumeAttachment) error {
	if !slices.Contains(va.Finalizers, AttacherFinalizer) {
		return nil
	}
	var t target
	err := func() error {
		pv, err := a.volume(va)
		if err != nil {
			return err
		}
		if t, err = a.targetOf(va, &pv.Spec, true); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
		defer cancel()
		_, err = a.controller.ControllerUnpublishVolume(cctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: t.handle, NodeId: t.nodeID})
		return err
	}()
	if err != nil {
		saved := a.saveError(ctx, va, err)
		a.logf("detach: %s: failed (attempt %d, retried with backoff): %v%s", describe(va, t), a.vaQueue.NumRequeues(va.Name)+1, err, saved)
		return err
	}
	released, over, err := a.writeVA(ctx, va, false, func(va *storagev1.VolumeAttachment) {
		va.Finalizers = slices.DeleteFunc(va.Finalizers, func(f string) bool { return f == AttacherFinalizer })
	})
	switch {
	case apierrors.IsNotFound(err):
		a.logf("detach: %s: detached (the VolumeAttachment is gone)", describe(va, t))
		return nil
	case err != nil:
		a.logf("detach: %s: detached, but removing the finalizer failed (retried): %v", describe(va, t), err)
		return fmt.Errorf("removing the finalizer of VolumeAttachment %q: %w", va.Name, err)
	}
	a.wrote(va.Name, append(over, released.ResourceVersion)...)
	if _, _, err := a.writeVA(ctx, released, true, func(va *storagev1.VolumeAttachment) {
		va.Status.Attached, va.Status.AttachmentMetadata, va.Status.DetachError = false, nil, nil
	}); err != nil && !apierrors.IsNotFound(err) {
		// The finalizer is gone, so the attach-detach controller counts it detached; nothing to retry.
		a.logf("detach: %s: detached; clearing status.attached failed: %v", describe(va, t), err)
		return nil
	}
	a.logf("detach: %s: detached", describe(va, t))
	return nil
}

// saveError records err in status.attachError of a VolumeAttachment being attached, or in
// status.detachError of one being deleted, with the gRPC code when err is a gRPC status
// (saveAttachError, saveDetachError). It returns "" or, for the log line, why it could not.
func (a *Attacher) saveError(ctx context.Context, va *storagev1.VolumeAttachment, err error) string {
	ve := &storagev1.VolumeError{Time: metav1.Now(), Message: err.Error()}
	if st, ok := status.FromError(err); ok {
		code := int32(st.Code())
		ve.ErrorCode = &code
	}
	deleting := va.DeletionTimestamp != nil
	if _, _, uerr := a.writeVA(ctx, va, true, func(va *storagev1.VolumeAttachment) {
		if deleting {
			va.Status.DetachError = ve
		} else {
			va.Status.AttachError = ve
		}
	}); uerr != nil {
		return fmt.Sprintf(" (recording the error failed: %v)", uerr)
	}
	return ""
}

// writeVA applies change to a copy of the VolumeAttachment and writes it: through the status
// subresource (UpdateStatus) if status, else as the object (Update). When the copy was not the latest (a
// Conflict: the informer's cache is behind, or someone else wrote), it reads the object from the API
// server, applies change to that and tries again, as retry.RetryOnConflict with retry.DefaultRetry
// allows (5 tries, 10 ms apart and more). It returns the object stored and the resourceVersions it wrote
// over; the error is the API server's (NotFound when the object is gone).
func (a *Attacher) writeVA(ctx context.Context, va *storagev1.VolumeAttachment, status bool, change func(*storagev1.VolumeAttachment)) (*storagev1.VolumeAttachment, []string, error) {
	client := a.cfg.Client.StorageV1().VolumeAttachments()
	var over []string
	var stored *storagev1.VolumeAttachment
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		clone := va.DeepCopy()
		change(clone)
		over = append(over, va.ResourceVersion)
		var err error
		if status {
			stored, err = client.UpdateStatus(ctx, clone, metav1.UpdateOptions{})
		} else {
			stored, err = client.Update(ctx, clone, metav1.UpdateOptions{})
		}
		if apierrors.IsConflict(err) {
			latest, gerr := client.Get(ctx, va.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			va = latest
		}
		return err
	})
	return stored, over, err
}

// writePV is writeVA for a PersistentVolume's metadata (Update).
func (a *Attacher) writePV(ctx context.Context, pv *corev1.PersistentVolume, change func(*corev1.PersistentVolume)) error {
	client := a.cfg.Client.CoreV1().PersistentVolumes()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		clone := pv.DeepCopy()
		change(clone)
		_, err := client.Update(ctx, clone, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			latest, gerr := client.Get(ctx, pv.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			pv = latest
		}
		return err
	})
}

// volume is the VolumeAttachment's PersistentVolume, a CSI volume of DriverName's. Inline volume specs (what the
// attach-detach controller makes for an in-tree gcePersistentDisk volume in a pod under CSI migration)
// are refused: their volume handles need external-attacher's translation (RepairVolumeHandle), which this
// attacher does not have, and the stack's pod uses a PersistentVolume.
func (a *Attacher) volume(va *storagev1.VolumeAttachment) (*corev1.PersistentVolume, error) {
	src := va.Spec.Source
	switch {
	case src.InlineVolumeSpec != nil:
		return nil, fmt.Errorf("VolumeAttachment %q has an inline volume spec: the testbed's attacher (testbed/csi) only attaches PersistentVolumes", va.Name)
	case src.PersistentVolumeName == nil:
		return nil, fmt.Errorf("VolumeAttachment %q names no PersistentVolume", va.Name)
	}
	pv, err := a.pvs.Get(*src.PersistentVolumeName)
	if err != nil {
		return nil, fmt.Errorf("getting PersistentVolume %q: %w", *src.PersistentVolumeName, err)
	}
	if pv.Spec.CSI == nil {
		return nil, fmt.Errorf("PersistentVolume %q is not a CSI volume", pv.Name)
	}
	if pv.Spec.CSI.Driver != DriverName {
		return nil, fmt.Errorf("PersistentVolume %q is for CSI driver %q, not %s", pv.Name, pv.Spec.CSI.Driver, DriverName)
	}
	return pv, nil
}

// targetOf reads the request from the PersistentVolume's spec and the node's CSINode (GetVolumeHandle,
// GetVolumeAttributes, GetVolumeCapabilities with -default-fstype "", getNodeID). forDetach lets the
// node ID come from the VolumeAttachment's annotation when the CSINode no longer names the driver.
func (a *Attacher) targetOf(va *storagev1.VolumeAttachment, spec *corev1.PersistentVolumeSpec, forDetach bool) (target, error) {
	t := target{handle: spec.CSI.VolumeHandle, readOnly: spec.CSI.ReadOnly && a.publishReadOnly, attributes: spec.CSI.VolumeAttributes}
	var err error
	if t.nodeID, err = a.nodeID(va, forDetach); err != nil {
		return t, err
	}
	if forDetach {
		return t, nil
	}
	mode, err := accessMode(spec.AccessModes)
	if err != nil {
		return t, err
	}
	t.capability = &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if spec.VolumeMode != nil && *spec.VolumeMode == corev1.PersistentVolumeBlock {
		t.capability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		t.capability.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{
			FsType: spec.CSI.FSType, MountFlags: spec.MountOptions}}
	}
	return t, nil
}

// nodeID is the CSI node ID the kubelet recorded for DriverName in the node's CSINode
// (spec.drivers[name].nodeID), or for a detach, failing that, the VolumeAttachment's NodeIDAnnotation.
func (a *Attacher) nodeID(va *storagev1.VolumeAttachment, forDetach bool) (string, error) {
	node := va.Spec.NodeName
	csiNode, err := a.csiNodes.Get(node)
	if err == nil {
		err = fmt.Errorf("CSINode %s does not name driver %s", node, DriverName)
		for _, d := range csiNode.Spec.Drivers {
			if d.Name == DriverName {
				return d.NodeID, nil
			}
		}
	}
	if id := va.Annotations[NodeIDAnnotation]; forDetach && id != "" {
		return id, nil
	}
	return "", fmt.Errorf("no CSI node ID for node %s (has its kubelet registered %s?): %w", node, DriverName, err)
}

// accessMode maps a PersistentVolume's access modes to the CSI access mode for a plugin without the
// SINGLE_NODE_MULTI_WRITER capability, as csi-lib-utils accessmodes.ToCSIAccessMode does: ReadWriteOncePod
// (alone) and ReadWriteOnce are SINGLE_NODE_WRITER, ReadOnlyMany is MULTI_NODE_READER_ONLY, ReadWriteMany
// (with anything) is MULTI_NODE_MULTI_WRITER; ReadOnlyMany with ReadWriteOnce has no CSI mode.
func accessMode(modes []corev1.PersistentVolumeAccessMode) (csi.VolumeCapability_AccessMode_Mode, error) {
	has := func(m corev1.PersistentVolumeAccessMode) bool { return slices.Contains(modes, m) }
	switch {
	case has(corev1.ReadWriteOncePod):
		if slices.ContainsFunc(modes, func(m corev1.PersistentVolumeAccessMode) bool { return m != corev1.ReadWriteOncePod }) {
			return 0, errors.New("ReadWriteOncePod cannot be combined with other access modes on a PersistentVolume")
		}
		return csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, nil
	case has(corev1.ReadWriteMany):
		return csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER, nil
	case has(corev1.ReadOnlyMany) && has(corev1.ReadWriteOnce):
		return 0, errors.New("CSI has no access mode for ReadOnlyMany with ReadWriteOnce")
	case has(corev1.ReadOnlyMany):
		return csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, nil
	case has(corev1.ReadWriteOnce):
		return csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, nil
	}
	return 0, fmt.Errorf("unsupported access modes %v", modes)
}

// holdVA adds AttacherFinalizer and NodeIDAnnotation to the VolumeAttachment, if missing, and returns
// the object as the API server stored it.
func (a *Attacher) holdVA(ctx context.Context, va *storagev1.VolumeAttachment, nodeID string) (*storagev1.VolumeAttachment, error) {
	if slices.Contains(va.Finalizers, AttacherFinalizer) && va.Annotations[NodeIDAnnotation] == nodeID {
		return va, nil
	}
	stored, _, err := a.writeVA(ctx, va, false, func(va *storagev1.VolumeAttachment) {
		if !slices.Contains(va.Finalizers, AttacherFinalizer) {
			va.Finalizers = append(va.Finalizers, AttacherFinalizer)
		}
		if va.Annotations == nil {
			va.Annotations = map[string]string{}
		}
		va.Annotations[NodeIDAnnotation] = nodeID
	})
	if err != nil {
		return va, err
	}
	return stored, nil
}

// holdPV adds AttacherFinalizer to the PersistentVolume, if missing, so that it is not deleted while a
// VolumeAttachment still needs its volume handle to detach (addPVFinalizer). syncPV removes it.
func (a *Attacher) holdPV(ctx context.Context, pv *corev1.PersistentVolume) error {
	if slices.Contains(pv.Finalizers, AttacherFinalizer) {
		return nil
	}
	return a.writePV(ctx, pv, func(pv *corev1.PersistentVolume) {
		if !slices.Contains(pv.Finalizers, AttacherFinalizer) {
			pv.Finalizers = append(pv.Finalizers, AttacherFinalizer)
		}
	})
}

// syncPV removes AttacherFinalizer from a PersistentVolume being deleted once no VolumeAttachment names
// it (SyncNewOrUpdatedPersistentVolume); the deletion of the last one queues the PersistentVolume again.
func (a *Attacher) syncPV(ctx context.Context, name string) error {
	pv, err := a.pvs.Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case pv.DeletionTimestamp == nil || !slices.Contains(pv.Finalizers, AttacherFinalizer):
		return nil
	}
	vas, err := a.vas.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, va := range vas {
		if n := va.Spec.Source.PersistentVolumeName; n != nil && *n == name {
			return nil
		}
	}
	err = a.writePV(ctx, pv, func(pv *corev1.PersistentVolume) {
		pv.Finalizers = slices.DeleteFunc(pv.Finalizers, func(f string) bool { return f == AttacherFinalizer })
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		a.logf("PersistentVolume %s: removing the finalizer failed (retried): %v", name, err)
		return err
	}
	a.logf("PersistentVolume %s: no VolumeAttachment names it; finalizer %s removed", name, AttacherFinalizer)
	return nil
}
