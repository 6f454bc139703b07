// Package dockerhub stands in for Docker Hub, and for registry.k8s.io, for the test node's containerd,
// which no real registry can reach. containerd is given a registry mirror for each, both at the one
// server,
//
//	[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
//	  endpoint = ["http://127.0.0.1:PORT"]
//	[plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
//	  endpoint = ["http://127.0.0.1:PORT"]
//
// and `sandbox_image = "docker.io/library/loklak-standin-pause:v1"` (SandboxImage), and then pulls the
// images the stacks name, loklak/loklak_server:latest-development among them, from this package's server.
// containerd adds ?ns=docker.io or ?ns=registry.k8s.io to every request it sends a mirror (containerd
// 1.6.20, remotes/docker: request.addNamespace), and the server keeps one registry per host and answers
// from the one ns names (Docker Hub's without ns).
//
// registry.k8s.io's stand-in serves one image, registry.k8s.io/kubectl:v1.33.13 (KubectlRef,
// KubectlImage): a static kubectl v1.33.13 built from k8s.io/kubernetes by hack/toolchain.sh, at
// /bin/kubectl, the entrypoint, as user 0, as Kubernetes' own image has it, without the rest of
// distroless.
//
// A test can make the server refuse one repository's pulls as Docker Hub does over its pull rate limit
// (429 TOOMANYREQUESTS, RateLimitBody) and allow them again: Refuse and Allow, over HTTP, at the
// server's address, through the endpoint under AdminPath (/testbed/refusals), where no registry client
// goes.
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
// authentication, no token service, no pull counting (a rate-limit refusal is only what a test asks
// for, with Refuse), no TLS, no multi-arch index (one architecture, this machine's), and nothing
// persists: the registries live in memory and are filled at every start.
//
// Shapes: Catalog lists the references; Build makes the images from the binaries' bytes (Binaries: the
// loklak stand-in, pause, rclone, busybox, kubectl; the same bytes make the same digests, so a test that
// reads the binaries the server used, with ReadBinaries and runtime.GOARCH, can compute DigestRef
// without asking the server); Push writes them into the server at a host:port, each into its host's
// registry, ReadyRef last; Publish is Build then Push; Listen, Serve and Shutdown run the server on a
// loopback address; ReadBinaries reads the binaries from hack/toolchain.sh's bin/images, building the
// stand-in and pause ones if missing.
//
// The command is testbed/cmd/dockerhub-standin. Its start-up, from exec to the first 200 on ReadyRef's
// manifest, measured 0.38 to 0.62 s (ten runs, 2 CPUs, binaries already built: a 7.7 MB stand-in and a
// 1.6 MB pause); building the binaries first added about 1 s with a warm Go build cache. With
// rclone/rclone:1.71.0 (a 70 MB rclone, a 1.9 MB busybox) it is 0.74 to 1.17 s to the serving line, five
// runs, against 0.31 s without it on the same machine the same hour: its layer is stored uncompressed in
// its gzip blob, since compressing it took about 2 s.
package dockerhub
