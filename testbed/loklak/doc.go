// Package loklak is a stand-in for loklak_server (github.com/loklak/loklak_server) where this
// project's Kubernetes stack depends on it: the port from PORT, GET /api/status.json (503 until a start
// delay has passed, then 200 with the heap from ENVXmx and the version), the message dump under
// DATA/dump/own (messages_YYYYMMDD_NNNNNNNN.txt, older days gzipped in place in the background from the
// start, dump_write_enabled), the GET /dump/ listing in loklak's format with each file's bytes at its
// link, and a clean stop on SIGTERM. Tests steer it with files in DATA/standin-control (ControlDir): a
// clock offset, a cut or throttled gzip, a failed start. The sub-package image builds its container
// images. See README.md for what it copies and from where, and what it does not do.
package loklak
