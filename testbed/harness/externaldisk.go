package harness

import (
	"fmt"
	"strconv"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gcp"
)

// PutExternalDisk puts the disk a stack in diskMode external names (gcpProject, zone, diskName,
// diskSizeGb, diskType from values) into the simulated project in gceDir, blank, as a disk made outside
// the stack, unless it is there already. It returns the disk's path and whether it put it there.
func PutExternalDisk(gceDir string, values stackconfig.Values) (path string, put bool, err error) {
	gce, err := gcp.Open(gceDir)
	if err != nil {
		return "", false, err
	}
	path = gcp.DiskPath(values["gcpProject"], values["zone"], values["diskName"])
	if _, err := gce.GetDisk(path); err == nil || !gcp.IsNotFound(err) {
		return path, false, err
	}
	size, err := strconv.Atoi(values["diskSizeGb"])
	if err != nil {
		return path, false, fmt.Errorf("diskSizeGb %q: %w", values["diskSizeGb"], err)
	}
	_, err = gce.PutDisk(gcp.Disk{Name: values["diskName"], Project: values["gcpProject"], Zone: values["zone"],
		SizeGB: size, Type: values["diskType"]})
	return path, err == nil, err
}
