// Package gcs is the testbed's Cloud Storage: github.com/fsouza/fake-gcs-server v1.56.1's fakestorage over
// its filesystem backend, rooted in the simulated project's directory (the directory testbed/gcp keeps
// the project in, LOKLAK_GCE_STANDIN_DIR), in the folder RootDir: a folder per bucket, a file per object.
//
// One process at a time owns that folder, in one of two ways:
//
//   - Emulator (emulator.go) serves it over plain HTTP on 127.0.0.1, and on the extra addresses it is
//     given (the host's own IP, which a pod on the real node reaches), on one port that stays the same
//     across Stop and Restart. The GCP stand-in plugin reaches it at the URL in LOKLAK_GCS_STANDIN_URL
//     (gcp.StorageURLEnv), a pod (rclone, say) at URLOn(host). On loopback (URL) anything goes, as for
//     the project's owner; on an extra address (URLOn) the requests are the archiver service account's
//     and its IAM roles are enforced as Cloud Storage enforces them (iam.go): it may create and read
//     objects, never overwrite or delete one. Tests start it beside the control plane; Stop behaves
//     like a crash, and HoldUploads stops uploads just before they are stored, so a test can act while
//     one is in flight.
//   - InProcess runs the same emulator inside the calling process, without a listener: the GCP stand-in
//     does so when no server URL is set (its unit tests and the conformance test).
//
// A running Emulator holds an exclusive flock on LockFile beside the folder, and every InProcess user a
// shared one for as long as it lives, so an Emulator does not start over a folder an in-process emulator
// is using, and the stand-in does not open a folder an Emulator is serving (its URL was not passed on).
//
// It is test infrastructure, like the rest of testbed/; package infra never imports it.
package gcs
