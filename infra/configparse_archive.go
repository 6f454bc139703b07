package infra

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Parsing of the archive keys (ArchiveConfig); the rest of ParseConfig is in configparse.go.

// Limits of the archive keys, named once so messages and checks agree.
const (
	// maxRetentionDays keeps retentionPeriod (seconds) within the API's 2147483647 (gcs rules §1).
	maxRetentionDays = 2147483647 / 86400
	// Cloud Storage's soft-delete retention: 0 (off) or 7 to 90 days.
	minSoftDeleteDays, maxSoftDeleteDays = 7, 90
)

// archive reads the archive keys. They are checked whether or not archiveBucket is set, so a bad value
// never waits in the stack file for the day the archive is turned on.
func (p *parser) archive(region string) ArchiveConfig {
	a := ArchiveConfig{Bucket: p.optional("archiveBucket")}
	a.ArchiverEnabled = p.boolean("archiverEnabled")
	if a.Bucket != "" {
		if why := gcsBucketNameProblem(a.Bucket); why != "" {
			p.fail("archiveBucket", a.Bucket, "must be a Cloud Storage bucket name: "+why+" (https://cloud.google.com/storage/docs/buckets#naming); empty declares no archive")
		}
	}
	switch a.Location = p.optional("archiveLocation"); {
	case a.Location == "":
		a.Location = region
	case !regionPattern.MatchString(strings.ToLower(a.Location)) && !slices.Contains(gcsMultiRegions, strings.ToUpper(a.Location)):
		p.fail("archiveLocation", a.Location, "must be a Cloud Storage location: a region such as us-central1, a multi-region ("+
			strings.Join(gcsMultiRegions[:3], ", ")+") or a predefined dual-region ("+strings.Join(gcsMultiRegions[3:], ", ")+"); empty is the stack's region")
	}
	a.ArchiverImage = p.image("archiverImage")
	a.MinAgeMinutes = p.intIn("archiveMinAgeMinutes", 1, 10080, "minutes a closed dump file must stay unmodified before it is copied, so a file loklak is still gzipping is never taken")
	a.IntervalSeconds = p.intIn("archiveIntervalSeconds", 10, 86400, "seconds between two archive rounds; a failed round is retried after it")
	a.PruneAfterDays = p.intIn("archivePruneAfterDays", 0, 3650, "days a closed dump file stays on the disk before it is removed, once the bucket holds it; 0 keeps every file")
	switch prune := strconv.Itoa(a.PruneAfterDays); {
	case a.PruneAfterDays > 0 && !a.Enabled():
		p.fail("archivePruneAfterDays", prune, "must be 0 without an archive (archiveBucket is empty): a dump leaves the disk only once a bucket holds it")
	case a.PruneAfterDays > 0 && !a.ArchiverEnabled:
		p.fail("archivePruneAfterDays", prune, "must be 0 while archiverEnabled is false: nothing copies, so nothing may be removed")
	case a.PruneAfterDays > 0 && a.MinAgeMinutes > a.PruneAfterDays*24*60:
		p.fail("archivePruneAfterDays", prune, fmt.Sprintf("must be at least archiveMinAgeMinutes (%d) in days, or 0: a file is pruned only once the copy would take it", a.MinAgeMinutes))
	}
	a.ColdStorageClass = p.oneOf("archiveColdStorageClass", storageClasses)
	a.ColdAfterDays = p.intIn("archiveColdAfterDays", 0, 36500, "days after an object's creation that it moves to archiveColdStorageClass; 0 keeps it STANDARD")
	a.RetentionDays = p.intIn("archiveRetentionDays", 0, maxRetentionDays, "days no object can be deleted or replaced, a retention policy the program never locks; 0 declares none")
	a.SoftDeleteDays = p.softDeleteDays("archiveSoftDeleteDays")
	a.Public = p.boolean("archivePublic")
	a.PublicAccessPrevention = p.oneOf("archivePublicAccessPrevention", publicAccessModes)
	switch {
	case a.Public && !a.Enabled():
		p.fail("archivePublic", "true", "must be false without an archive (archiveBucket is empty)")
	case a.Public && a.PublicAccessPrevention == "enforced":
		p.fail("archivePublicAccessPrevention", "enforced", `must be "inherited" when archivePublic is true: enforced public access prevention refuses the allUsers grant that publishes the dumps`)
	}
	if a.Endpoint = p.optional("archiveEndpoint"); a.Endpoint != "" && !endpointPattern.MatchString(a.Endpoint) {
		p.fail("archiveEndpoint", a.Endpoint, "must be empty (Google's Cloud Storage, with Workload Identity) or an emulator's JSON API base URL ending in /storage/v1/, such as http://10.0.0.1:4443/storage/v1/")
	}
	if !a.Enabled() {
		return ArchiveConfig{}
	}
	return a
}

// gcsMultiRegions are Cloud Storage's multi-regions, then its predefined dual-regions
// (cloud.google.com/storage/docs/locations).
var gcsMultiRegions = []string{"US", "EU", "ASIA", "ASIA1", "EUR4", "EUR5", "EUR7", "EUR8", "NAM4"}

// softDeleteDays reads Cloud Storage's soft-delete retention: 0 or 7 to 90 days.
func (p *parser) softDeleteDays(key string) int {
	const allowed = "0 (soft delete off) or 7 to 90: days Cloud Storage keeps a deleted object restorable, billed as storage"
	n := p.intIn(key, 0, maxSoftDeleteDays, allowed)
	if n > 0 && n < minSoftDeleteDays {
		p.fail(key, strconv.Itoa(n), "must be "+allowed)
		return 0
	}
	return n
}

var (
	gcsNameChars = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*[a-z0-9]$`)
	dottedQuad   = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){3}$`)
)

// gcsBucketNameProblem says why name is not a Cloud Storage bucket name, or returns "". The rules are
// the provider's ValidateGCSName (gcs rules §1 "Validation of name"), with the 222-character limit
// applied to the whole name, which the provider's unanchored pattern misses.
func gcsBucketNameProblem(name string) string {
	switch {
	case len(name) < 3 || len(name) > 222:
		return "3 to 63 characters (222 with dots)"
	case !gcsNameChars.MatchString(name):
		return `only lowercase letters, digits, "-", "_" and ".", starting and ending with a letter or digit`
	case !strings.Contains(name, ".") && len(name) > 63:
		return "at most 63 characters without dots"
	case dottedQuad.MatchString(name):
		return "not an IP address"
	case strings.HasPrefix(name, "goog") || strings.Contains(strings.ReplaceAll(name, "0", "o"), "google"):
		return `not starting with "goog" nor containing "google" (or "g00gle")`
	}
	for _, part := range strings.Split(name, ".") {
		if len(part) == 0 || len(part) > 63 {
			return "each dot-separated part 1 to 63 characters"
		}
	}
	return ""
}
