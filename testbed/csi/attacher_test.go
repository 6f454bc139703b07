package csi

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The attacher's tests run it against client-go's fake clientset and the plugin on its socket, with a
// simulated project and no root. The fake's object tracker (k8s.io/client-go/testing fixture.go, v0.37.2)
// stores what it is given: it sets no resourceVersion and so refuses no stale update, a delete removes
// the object whatever its finalizers, and an update of the status subresource stores the whole object, as
// an update of the object does. The attacher relies on all three, so apiServerRules adds them as a
// reactor in front of the tracker.

// otherAttacher is a CSI driver the attacher must leave alone.
const otherAttacher = "other.csi.example.com"

// startAttacher runs an attacher for p's plugin against a fake clientset (with apiServerRules) that starts
// with objs and with a CSINode for testNode naming the plugin's node ID. Failed VolumeAttachments are
// retried after 10 ms, doubling up to 200 ms. Its log lines go to the test's log and, if log is not nil,
// to log. It stops, and has finished, when the test ends.
func startAttacher(t *testing.T, p plugin, workers int, log *lines, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	objs = append(objs, &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: testNode},
		Spec:       storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: DriverName, NodeID: p.driver.NodeID()}}},
	})
	client := fake.NewClientset()
	apiServerRules(client)
	for _, obj := range objs {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetResourceVersion("1")
		}
		if err := client.Tracker().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	var logging atomic.Bool
	logging.Store(true)
	a, err := NewAttacher(AttacherConfig{Client: client, Conn: p.conn, RetryStart: 10 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Workers: workers, Logf: func(format string, args ...any) {
			if logging.Load() {
				t.Logf(format, args...)
			}
			if log != nil {
				log.add(fmt.Sprintf(format, args...))
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("attacher: %v", err)
		}
		logging.Store(false)
	})
	return client
}

// lines collects log lines.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, s)
}

// matching lists the lines that contain every one of parts.
func (l *lines) matching(parts ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.all {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(s, p) }) {
			out = append(out, s)
		}
	}
	return out
}

// apiServerRules makes the fake clientset keep three rules of the API server's that the attacher relies
// on (the fake runs one action at a time, so the reactor needs no lock of its own):
//
//   - Every create and update stores a new resourceVersion, and an update that does not carry the stored
//     one is refused with a Conflict (optimistic concurrency).
//   - An update of a VolumeAttachment's status subresource changes only its status, and an update of the
//     object leaves the status as it was (the registry's status strategy); no update sets or clears
//     deletionTimestamp.
//   - A delete of an object with finalizers sets its deletionTimestamp, and the update that removes the
//     last finalizer of such an object deletes it (graceful deletion with finalizers).
func apiServerRules(client *fake.Clientset) {
	version := 1
	next := func() string { version++; return strconv.Itoa(version) }
	tracker := client.Tracker()
	client.PrependReactor("*", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		gvr, ns := action.GetResource(), action.GetNamespace()
		switch action := action.(type) {
		case k8stesting.CreateActionImpl:
			if m, err := meta.Accessor(action.GetObject()); err == nil {
				m.SetResourceVersion(next())
			}
		case k8stesting.UpdateActionImpl:
			obj := action.GetObject()
			m, err := meta.Accessor(obj)
			if err != nil {
				return false, nil, nil
			}
			stored, err := tracker.Get(gvr, ns, m.GetName())
			if err != nil {
				return true, nil, err
			}
			sm, _ := meta.Accessor(stored)
			if m.GetResourceVersion() != sm.GetResourceVersion() {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
					fmt.Errorf("the object has been modified; resourceVersion %q, stored %q", m.GetResourceVersion(), sm.GetResourceVersion()))
			}
			if va, ok := obj.(*storagev1.VolumeAttachment); ok {
				old := stored.(*storagev1.VolumeAttachment)
				if action.GetSubresource() == "status" {
					st := va.Status
					*va = *old.DeepCopy()
					va.Status = st
				} else {
					va.Status = *old.Status.DeepCopy()
				}
			}
			m.SetDeletionTimestamp(sm.GetDeletionTimestamp())
			m.SetResourceVersion(next())
			if m.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) == 0 {
				return true, obj, tracker.Delete(gvr, ns, m.GetName())
			}
		case k8stesting.DeleteActionImpl:
			stored, err := tracker.Get(gvr, ns, action.GetName())
			if err != nil {
				return true, nil, err
			}
			sm, _ := meta.Accessor(stored)
			if len(sm.GetFinalizers()) == 0 {
				return false, nil, nil
			}
			if sm.GetDeletionTimestamp() == nil {
				sm.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
				sm.SetResourceVersion(next())
				return true, nil, tracker.Update(gvr, stored, ns)
			}
			return true, nil, nil
		}
		return false, nil, nil
	})
}

// pdVolume is a PersistentVolume of the PD CSI driver's for the volume handle, as the stack writes one:
// ReadWriteOnce, ext4.
func pdVolume(name, handle string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: DriverName, VolumeHandle: handle, FSType: "ext4"}},
		},
	}
}

// attachment is a VolumeAttachment as the attach-detach controller makes one, for a PersistentVolume on
// testNode.
func attachment(name, attacher, pv string) *storagev1.VolumeAttachment {
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: attacher, NodeName: testNode,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
	}
}

func createVA(t *testing.T, client *fake.Clientset, va *storagev1.VolumeAttachment) {
	t.Helper()
	if _, err := client.StorageV1().VolumeAttachments().Create(bg, va, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitVA polls the VolumeAttachment until cond holds, for at most 10 s, and returns it; on timeout it
// fails the test with what it saw last.
func waitVA(t *testing.T, client *fake.Clientset, name, what string, cond func(*storagev1.VolumeAttachment) bool) *storagev1.VolumeAttachment {
	t.Helper()
	var last *storagev1.VolumeAttachment
	err := wait.PollUntilContextTimeout(bg, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		va, err := client.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = va
		return cond(va), nil
	})
	if err != nil {
		t.Fatalf("VolumeAttachment %s: waiting until %s: %v; last seen: %s", name, what, err, vaState(last))
	}
	return last
}

func vaState(va *storagev1.VolumeAttachment) string {
	if va == nil {
		return "nothing"
	}
	return fmt.Sprintf("finalizers %v, annotations %v, attached %v, attachError %v, detachError %v",
		va.Finalizers, va.Annotations, va.Status.Attached, va.Status.AttachError, va.Status.DetachError)
}

func getPV(t *testing.T, client *fake.Clientset, name string) *corev1.PersistentVolume {
	t.Helper()
	pv, err := client.CoreV1().PersistentVolumes().Get(bg, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

func insertDisk(t *testing.T, c *gcp.Compute, name string) gcp.Disk {
	t.Helper()
	d, err := c.InsertDisk(gcp.Disk{Name: name, Project: testProject, Zone: testZone, SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diskUsers(t *testing.T, c *gcp.Compute, path string) []string {
	t.Helper()
	d, err := c.GetDisk(path)
	if err != nil {
		t.Fatal(err)
	}
	return d.Users
}

// TestAttacherAttachesAndDetaches follows one VolumeAttachment through its life: attached (finalizers on
// it and its PersistentVolume, the node ID annotated, the disk's users naming the node's instance), then
// deleted (the disk detached, the finalizer removed, so the object goes). Its PersistentVolume, deleted
// while attached, stays until the VolumeAttachment is gone. Each step is logged once and nothing fails
// on the way, also not for an informer cache behind the attacher's own writes.
func TestAttacherAttachesAndDetaches(t *testing.T) {
	p := startPlugin(t)
	disk := insertDisk(t, p.compute, "data")
	log := &lines{}
	client := startAttacher(t, p, 0, log, pdVolume("pv-data", disk.Path()))
	createVA(t, client, attachment("va-data", DriverName, "pv-data"))

	va := waitVA(t, client, "va-data", "attached", func(va *storagev1.VolumeAttachment) bool { return va.Status.Attached })
	if !slices.Contains(va.Finalizers, AttacherFinalizer) || va.Annotations[NodeIDAnnotation] != p.driver.NodeID() || va.Status.AttachError != nil {
		t.Errorf("attached VolumeAttachment: %s; want finalizer %s, annotation %s=%s, no attachError",
			vaState(va), AttacherFinalizer, NodeIDAnnotation, p.driver.NodeID())
	}
	if users, want := diskUsers(t, p.compute, disk.Path()), []string{gcp.APIBase + p.driver.NodeID()}; !slices.Equal(users, want) {
		t.Errorf("disk users after the attach: %v, want %v", users, want)
	}
	if pv := getPV(t, client, "pv-data"); !slices.Contains(pv.Finalizers, AttacherFinalizer) {
		t.Errorf("PersistentVolume finalizers %v, want %s", pv.Finalizers, AttacherFinalizer)
	}

	// The PersistentVolume is deleted while attached, then the attach-detach controller deletes the
	// VolumeAttachment.
	if err := client.CoreV1().PersistentVolumes().Delete(bg, "pv-data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.StorageV1().VolumeAttachments().Delete(bg, "va-data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, "VolumeAttachment va-data", func(ctx context.Context) error {
		_, err := client.StorageV1().VolumeAttachments().Get(ctx, "va-data", metav1.GetOptions{})
		return err
	})
	if users := diskUsers(t, p.compute, disk.Path()); len(users) != 0 {
		t.Errorf("disk users after the detach: %v, want none", users)
	}
	waitGone(t, "PersistentVolume pv-data", func(ctx context.Context) error {
		_, err := client.CoreV1().PersistentVolumes().Get(ctx, "pv-data", metav1.GetOptions{})
		return err
	})

	// The PersistentVolume's finalizer went after the VolumeAttachment's.
	vaReleased, pvReleased := -1, -1
	for i, a := range client.Actions() {
		u, ok := a.(k8stesting.UpdateActionImpl)
		if !ok || u.GetSubresource() != "" {
			continue
		}
		m, _ := meta.Accessor(u.GetObject())
		if m.GetDeletionTimestamp() == nil || slices.Contains(m.GetFinalizers(), AttacherFinalizer) {
			continue
		}
		switch u.GetResource().Resource {
		case "volumeattachments":
			vaReleased = i
		case "persistentvolumes":
			pvReleased = i
		}
	}
	if vaReleased < 0 || pvReleased < vaReleased {
		t.Errorf("the finalizer left the VolumeAttachment at action %d and the PersistentVolume at action %d; want the VolumeAttachment first", vaReleased, pvReleased)
	}
	for _, want := range []string{"attach: volume " + disk.Path() + ", node node-1 (" + p.driver.NodeID() + "), VolumeAttachment va-data: attached",
		"detach: volume " + disk.Path() + ", node node-1 (" + p.driver.NodeID() + "), VolumeAttachment va-data: detached"} {
		if got := log.matching(want); len(got) != 1 {
			t.Errorf("log lines %q: %d, want 1", want, len(got))
		}
	}
	if failed := log.matching("fail"); len(failed) != 0 {
		t.Errorf("failures logged: %q", failed)
	}
}

// waitGone polls get until it answers NotFound, for at most 10 s.
func waitGone(t *testing.T, what string, get func(context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(bg, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		last = get(ctx)
		return apierrors.IsNotFound(last), nil
	})
	if err != nil {
		t.Fatalf("%s still there: %v (last get: %v)", what, err, last)
	}
}

// TestAttacherRecordsGKERefusals checks that the plugin's refusals reach status.attachError as
// external-attacher writes them (the gRPC error's text, "rpc error: code = … desc = …", and its code), so
// that the attach-detach controller's FailedAttachVolume event reads as on GKE: a missing disk (NotFound)
// and a disk attached read-write to another instance (InvalidArgument). Neither changes the disk's users.
// Once the missing disk exists, the retry attaches it and clears the error.
func TestAttacherRecordsGKERefusals(t *testing.T) {
	p := startPlugin(t)
	other, err := p.compute.PutInstance(gcp.Instance{Name: "node-2", Project: testProject, Zone: testZone})
	if err != nil {
		t.Fatal(err)
	}
	used := insertDisk(t, p.compute, "used")
	if err := p.compute.AttachDisk(other.Path(), used.Path(), gcp.ReadWrite); err != nil {
		t.Fatal(err)
	}
	missing := gcp.DiskPath(testProject, testZone, "missing")
	client := startAttacher(t, p, 0, nil, pdVolume("pv-missing", missing), pdVolume("pv-used", used.Path()))
	createVA(t, client, attachment("va-missing", DriverName, "pv-missing"))
	createVA(t, client, attachment("va-used", DriverName, "pv-used"))

	for _, tc := range []struct {
		va      string
		code    codes.Code
		message string
	}{
		{"va-missing", codes.NotFound, `rpc error: code = NotFound desc = Could not find disk Key{"missing", zone: "us-central1-a"}: ` +
			`googleapi: Error 404: The resource 'projects/p1/zones/us-central1-a/disks/missing' was not found, notFound`},
		{"va-used", codes.InvalidArgument, "rpc error: code = InvalidArgument desc = Failed to Attach: failed cloud service attach disk call: " +
			"googleapi: Error 400: The disk resource 'projects/p1/zones/us-central1-a/disks/used' is already being used by " +
			"'projects/p1/zones/us-central1-a/instances/node-2', resourceInUseByAnotherResource"},
	} {
		va := waitVA(t, client, tc.va, "an attachError", func(va *storagev1.VolumeAttachment) bool { return va.Status.AttachError != nil })
		e := va.Status.AttachError
		if e.Message != tc.message || e.ErrorCode == nil || codes.Code(*e.ErrorCode) != tc.code || va.Status.Attached {
			t.Errorf("%s: %s;\nwant attached false, attachError code %v, message\n%s", tc.va, vaState(va), tc.code, tc.message)
		}
	}
	if users, want := diskUsers(t, p.compute, used.Path()), []string{gcp.APIBase + other.Path()}; !slices.Equal(users, want) {
		t.Errorf("the refusal changed the disk's users to %v, want %v", users, want)
	}

	insertDisk(t, p.compute, "missing")
	va := waitVA(t, client, "va-missing", "attached on a retry", func(va *storagev1.VolumeAttachment) bool { return va.Status.Attached })
	if va.Status.AttachError != nil {
		t.Errorf("attached, and the old attachError stayed: %s", vaState(va))
	}
}

// TestAttacherIgnoresOtherAttachers checks that a VolumeAttachment of another driver's is left as it is:
// no finalizer, no status, its disk not attached. With one worker and a FIFO queue, a VolumeAttachment
// created after it is handled after it, so by the time that one is attached the other would have been
// touched if it were going to be.
func TestAttacherIgnoresOtherAttachers(t *testing.T) {
	p := startPlugin(t)
	first, theirs, second := insertDisk(t, p.compute, "first"), insertDisk(t, p.compute, "theirs"), insertDisk(t, p.compute, "second")
	client := startAttacher(t, p, 1, nil, pdVolume("pv-first", first.Path()), pdVolume("pv-theirs", theirs.Path()), pdVolume("pv-second", second.Path()))
	createVA(t, client, attachment("va-first", DriverName, "pv-first"))
	waitVA(t, client, "va-first", "attached", func(va *storagev1.VolumeAttachment) bool { return va.Status.Attached }) // the informers run
	createVA(t, client, attachment("va-theirs", otherAttacher, "pv-theirs"))
	createVA(t, client, attachment("va-second", DriverName, "pv-second"))
	waitVA(t, client, "va-second", "attached", func(va *storagev1.VolumeAttachment) bool { return va.Status.Attached })

	va := waitVA(t, client, "va-theirs", "read", func(*storagev1.VolumeAttachment) bool { return true })
	if len(va.Finalizers) != 0 || len(va.Annotations) != 0 || va.Status.Attached || va.Status.AttachError != nil {
		t.Errorf("another attacher's VolumeAttachment was touched: %s", vaState(va))
	}
	if users := diskUsers(t, p.compute, theirs.Path()); len(users) != 0 {
		t.Errorf("another attacher's disk was attached to %v", users)
	}
	if pv := getPV(t, client, "pv-theirs"); len(pv.Finalizers) != 0 {
		t.Errorf("another attacher's PersistentVolume got finalizers %v", pv.Finalizers)
	}
}

// TestAttacherRefusesInlineVolumes checks that a VolumeAttachment with an inline volume spec gets an
// attachError saying this attacher handles PersistentVolumes only, and no finalizer (so the attach-detach
// controller can delete it freely).
func TestAttacherRefusesInlineVolumes(t *testing.T) {
	p := startPlugin(t)
	client := startAttacher(t, p, 0, nil)
	va := attachment("va-inline", DriverName, "")
	va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: &pdVolume("", gcp.DiskPath(testProject, testZone, "data")).Spec}
	createVA(t, client, va)
	va = waitVA(t, client, "va-inline", "an attachError", func(va *storagev1.VolumeAttachment) bool { return va.Status.AttachError != nil })
	if !strings.Contains(va.Status.AttachError.Message, "inline volume spec") || len(va.Finalizers) != 0 || va.Status.Attached {
		t.Errorf("inline VolumeAttachment: %s; want an attachError about the inline volume spec, no finalizer", vaState(va))
	}
}

// TestAccessModes checks the mapping from a PersistentVolume's access modes to CSI's, for a plugin
// without SINGLE_NODE_MULTI_WRITER (csi-lib-utils accessmodes).
func TestAccessModes(t *testing.T) {
	type m = corev1.PersistentVolumeAccessMode
	for _, tc := range []struct {
		modes []m
		want  string // a CSI mode, or "error"
	}{
		{[]m{corev1.ReadWriteOnce}, "SINGLE_NODE_WRITER"},
		{[]m{corev1.ReadWriteOncePod}, "SINGLE_NODE_WRITER"},
		{[]m{corev1.ReadOnlyMany}, "MULTI_NODE_READER_ONLY"},
		{[]m{corev1.ReadWriteMany, corev1.ReadWriteOnce}, "MULTI_NODE_MULTI_WRITER"},
		{[]m{corev1.ReadOnlyMany, corev1.ReadWriteOnce}, "error"},
		{[]m{corev1.ReadWriteOncePod, corev1.ReadWriteOnce}, "error"},
		{nil, "error"},
	} {
		got, err := accessMode(tc.modes)
		if s := got.String(); err != nil && tc.want != "error" || err == nil && s != tc.want {
			t.Errorf("accessMode(%v) = %v, %v; want %s", tc.modes, got, err, tc.want)
		}
	}
}
