// Package dockerhub stands in for Docker Hub for the test node's containerd, which no real registry can
// reach. containerd is given a registry mirror for docker.io,
//
//	[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
//	  endpoint = ["http://127.0.0.1:PORT"]
//
// and `sandbox_image = "docker.io/library/loklak-standin-pause:v1"` (SandboxImage), and then pulls the
// images the stacks name, loklak/loklak_server:latest-development among them, from this package's server.
//
// What is real: the OCI distribution protocol (manifests and blobs by tag and digest, HEAD and GET, the
// Docker-Content-Digest header, MANIFEST_UNKNOWN for an unknown tag), served by go-containerregistry's
// pkg/registry, an in-memory registry; the pushes, made with go-containerregistry's remote.Write and
// remote.Tag; the pulls, made by the real containerd, so imagePullPolicy: Always is a real pull and an
// image update is a pull of another manifest.
//
// What is simulated: the images. Every loklak/loklak_server tag in Catalog is the loklak stand-in
// (testbed/loklak/image), not loklak, and its status reports the stand-in's own name
// (loklak-standin:v1), not the reference it was pulled by. rclone/rclone:1.71.0 (RcloneRef, the archiver
// sidecar's image) is real rclone v1.71.0, built from its Go module by hack/toolchain.sh with every
// backend, but on Debian's busybox-static instead of Docker Hub's Alpine: /bin/sh, sleep, date, echo,
// cat and ls are busybox, and there is no CA bundle, tzdata or fuse (RcloneImage). There is no
// authentication, no token service, no rate limit, no TLS, no multi-arch index (one architecture, this
// machine's), and nothing persists: the registry lives in memory and is filled at every start.
//
// Shapes: Catalog lists the references; Build makes the images from the binaries' bytes (Binaries: the
// loklak stand-in, pause, rclone, busybox; the same bytes make the same digests, so a test that reads
// the binaries the server used, with ReadBinaries and runtime.GOARCH, can compute DigestRef without
// asking the server); Push writes them into a registry at a host:port, ReadyRef last; Publish is Build
// then Push; Listen, Serve and Shutdown run the registry on a loopback address; ReadBinaries reads the
// binaries from hack/toolchain.sh's bin/images, building the stand-in and pause ones if missing.
//
// The command is testbed/cmd/dockerhub-standin. Its start-up, from exec to the first 200 on ReadyRef's
// manifest, measured 0.38 to 0.62 s (ten runs, 2 CPUs, binaries already built: a 7.7 MB stand-in and a
// 1.6 MB pause); building the binaries first added about 1 s with a warm Go build cache. With
// rclone/rclone:1.71.0 (a 70 MB rclone, a 1.9 MB busybox) it is 0.74 to 1.17 s to the serving line, five
// runs, against 0.31 s without it on the same machine the same hour: its layer is stored uncompressed in
// its gzip blob, since compressing it took about 2 s.
package dockerhub
