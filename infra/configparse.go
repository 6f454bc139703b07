package infra

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// FieldError is one bad config value: the key, the value as given, and what is allowed.
type FieldError struct {
	Key     string
	Value   string
	Allowed string
}

func (e FieldError) Error() string {
	return fmt.Sprintf("config %s = %q: %s", e.Key, e.Value, e.Allowed)
}

// ConfigError carries every bad value at once, so a user fixes them in one round.
type ConfigError struct {
	Project string
	Errors  []FieldError
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid stack configuration, %d problem(s); nothing was changed:", len(e.Errors))
	for _, line := range e.Problems() {
		b.WriteString("\n  - " + line)
	}
	return b.String()
}

// ErrInvalidConfig is what Program returns once it has reported every bad value of the stack's
// configuration as an engine diagnostic of its own; nothing has been registered.
var ErrInvalidConfig = errors.New("invalid stack configuration")

// Problems are the bad values, a line each, with the keys as the CLI spells them (project:key).
func (e *ConfigError) Problems() []string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		fe.Key = e.Project + ":" + fe.Key
		lines[i] = fe.Error()
	}
	return lines
}

// Limits and allowed values, named once so messages and checks agree.
const (
	minDiskSizeGB = 10    // Compute Engine's smallest standard/balanced/SSD zonal disk
	maxDiskSizeGB = 65536 // 64 TiB, Compute Engine's largest zonal PD
	// minRegionalStandardGB is the smallest regional pd-standard disk; regional pd-balanced and pd-ssd
	// start at minDiskSizeGB, like zonal ones.
	minRegionalStandardGB = 200
)

var (
	diskTypes     = []string{"pd-standard", "pd-balanced", "pd-ssd"}
	diskModes     = []string{string(DiskCreate), string(DiskAdopt), string(DiskExternal)}
	schedules     = []string{"none", "hourly", "daily", "weekly"}
	weekdays      = []string{"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
	serviceTypes  = []string{"ClusterIP", "NodePort", "LoadBalancer"}
	addressModes  = []string{string(AddressNone), string(AddressCreate), string(AddressAdopt)}
	zonePattern   = regexp.MustCompile(`^([a-z]+-[a-z]+[0-9]+)-[a-z]$`)
	regionPattern = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
	// GCP project IDs, optionally domain-scoped (example.com:my-project).
	projectPattern = regexp.MustCompile(`^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	// RFC 1035 label: Compute Engine resource names, and Kubernetes names that must also be DNS labels.
	rfc1035Pattern   = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	labelKey         = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	labelValue       = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	clusterIDPattern = regexp.MustCompile(`^\S{1,253}$`)
	// snapshotPattern is a snapshot's name, or its path as the Compute API spells it.
	snapshotPattern = regexp.MustCompile(`^(?:projects/(([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9])/global/snapshots/)?([a-z]([-a-z0-9]{0,61}[a-z0-9])?)$`)
	// channelPattern is a notification channel's resource name, as alertPolicies.notificationChannels takes it.
	channelPattern    = regexp.MustCompile(`^projects/([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$`)
	storageClasses    = []string{"NEARLINE", "COLDLINE", "ARCHIVE"}
	publicAccessModes = []string{"enforced", "inherited"}
	// endpointPattern is an http(s) URL of a Cloud Storage JSON API endpoint: rclone's backend resolves
	// b/BUCKET/o against it, so it ends in /storage/v1/ (testbed/e2e/rclone TestEndpointForms).
	endpointPattern = regexp.MustCompile(`^https?://[^\s/]+/(\S*/)?storage/v1/$`)
	hourPattern     = regexp.MustCompile(`^([01][0-9]|2[0-3]):00$`)
	heapPattern     = regexp.MustCompile(`^([1-9][0-9]*)([kKmMgG])$`)
	// A container image reference: [registry[:port]/]path[:tag][@sha256:digest].
	imagePattern = regexp.MustCompile(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$`)
)

// ParseConfig reads and validates every key through get, which returns a key's raw value (as the engine
// hands it to the program: strings, with arrays as JSON text) and whether it is set. setKeys, when
// known, are all the full "project:key" names the stack sets; undeclared ones among them are refused.
// It never registers anything; a non-nil error is a *ConfigError listing every bad value.
func ParseConfig(project string, get func(key string) (string, bool), setKeys []string) (Config, error) {
	p := parser{get: get}
	var c Config

	c.GCPProject = p.match("gcpProject", projectPattern, "a Google Cloud project ID: 6 to 30 lowercase letters, digits or hyphens, starting with a letter")
	c.Zone = p.match("zone", zonePattern, "a Compute Engine zone such as us-central1-a")
	if m := zonePattern.FindStringSubmatch(c.Zone); m != nil {
		c.Region = m[1]
	}
	if region, ok := get("region"); ok && region != "" {
		switch {
		case !regionPattern.MatchString(region):
			p.fail("region", region, "a Compute Engine region such as us-central1, or empty to derive it from zone")
		case c.Region != "" && region != c.Region:
			p.fail("region", region, fmt.Sprintf("must be the region of zone %q, which is %q (or empty)", c.Zone, c.Region))
		}
	}

	c.Disk.Mode = DiskMode(p.oneOf("diskMode", diskModes))
	c.Disk.Name = p.match("diskName", rfc1035Pattern, "a Compute Engine disk name: 1 to 63 lowercase letters, digits or hyphens, starting with a letter, not ending with a hyphen")
	c.Disk.SizeGB = p.intIn("diskSizeGb", minDiskSizeGB, maxDiskSizeGB, "GiB, Compute Engine's limits for a zonal persistent disk")
	c.Disk.Type = p.oneOf("diskType", diskTypes)
	c.Disk.Labels = p.labels("diskLabels")
	c.Disk.ReplicaZones = p.replicaZones("diskReplicaZones", c.Region)
	if c.Disk.Regional() && c.Disk.Type == "pd-standard" && c.Disk.SizeGB > 0 && c.Disk.SizeGB < minRegionalStandardGB {
		p.fail("diskSizeGb", strconv.Itoa(c.Disk.SizeGB), fmt.Sprintf("must be at least %d for a regional pd-standard disk (diskReplicaZones is set): Compute Engine's smallest; pd-balanced and pd-ssd start at %d", minRegionalStandardGB, minDiskSizeGB))
	}
	c.Disk.SourceSnapshot = p.snapshot("diskSourceSnapshot", c.GCPProject)
	if c.Disk.Restored() && c.Disk.Mode != "" && c.Disk.Mode != DiskCreate {
		p.fail("diskMode", string(c.Disk.Mode), `must be "create" when diskSourceSnapshot is set: a disk made from a snapshot is a new disk`)
	}
	c.Disk.Protect = p.boolean("diskProtect")
	c.Disk.RetainOnDelete = p.boolean("diskRetainOnDelete")
	if c.Disk.Restored() && !c.Disk.RetainOnDelete {
		if v, _ := get("diskRetainOnDelete"); v == "false" {
			p.fail("diskRetainOnDelete", v, "must be true when diskSourceSnapshot is set: a restore lets the old disk leave the stack, and only retainOnDelete keeps it in the project (a stack that ran with false needs one up with true first: docs/restore.md)")
		}
	}

	c.Disk.RecreateBlank = p.boolean("diskRecreateBlank")

	c.Snapshots.Schedule = p.oneOf("snapshotSchedule", schedules)
	if c.Snapshots.Enabled() {
		if c.Disk.Mode == DiskExternal {
			p.fail("snapshotSchedule", c.Snapshots.Schedule, `must be "none" when diskMode is "external": the disk is managed elsewhere, so is its backup`)
		}
		if policy := c.Disk.SnapshotPolicyName(); c.Disk.Name != "" && len(policy) > 63 {
			p.fail("diskName", c.Disk.Name, fmt.Sprintf("must be at most %d characters when snapshotSchedule is set: the schedule is named %q, and Compute Engine names are at most 63", 63-len(snapshotPolicySuffix), policy))
		}
		c.Snapshots.StartTime = p.match("snapshotStartTime", hourPattern, "an hour in UTC as HH:00, such as 03:00")
		c.Snapshots.RetentionDays = p.intIn("snapshotRetentionDays", 1, 3650, "days")
		switch c.Snapshots.Schedule {
		case "hourly":
			c.Snapshots.HoursInCycle = p.intIn("snapshotHoursInCycle", 1, 23, "hours between snapshots")
		case "weekly":
			c.Snapshots.DayOfWeek = p.oneOf("snapshotDayOfWeek", weekdays)
		}
	}

	if kc := p.optional("kubeconfig"); strings.TrimSpace(kc) != "" {
		c.Kube.Kubeconfig = kc // as given: blank means the ambient kubeconfig
	}
	c.Kube.Context = p.optional("kubeContext")
	c.Kube.ClusterIdentifier = p.match("clusterIdentifier", clusterIDPattern, "a name for the cluster without spaces, such as gke_loklak-server_us-central1-a_web; change it only to move the stack to another cluster, which replaces every Kubernetes object")
	c.Namespace.Name = p.match("namespace", rfc1035Pattern, "a Kubernetes namespace name (DNS-1123 label): 1 to 63 lowercase letters, digits or hyphens, starting with a letter")
	c.Namespace.Create = p.boolean("createNamespace")
	if n, volume := c.Namespace.Name, c.VolumeName(); n != "" && len(volume) > 63 {
		why := ""
		if c.VolumeTag() != "" {
			why = " with a regional or restored disk"
		}
		p.fail("namespace", n, fmt.Sprintf("must be at most %d characters%s: it names the PersistentVolume %q, which a label value (at most 63) must hold", 63-len(volume)+len(n), why, volume))
	}

	c.Server.Image = p.image("image")
	c.Server.Replicas = p.intIn("replicas", 0, 1, "pods; the dumps disk is ReadWriteOnce and attaches to one node, so more than one replica cannot mount it")
	c.Server.HTTPPort = p.intIn("httpPort", 1, 65535, "a TCP port")
	c.Server.CPURequest = p.quantity("cpuRequest")
	c.Server.CPULimit = p.quantity("cpuLimit")
	c.Server.MemoryRequest = p.quantity("memoryRequest")
	c.Server.MemoryLimit = p.quantity("memoryLimit")
	p.notAbove("cpuRequest", c.Server.CPURequest, "cpuLimit", c.Server.CPULimit)
	p.notAbove("memoryRequest", c.Server.MemoryRequest, "memoryLimit", c.Server.MemoryLimit)
	c.Server.EphemeralStorageRequest = p.quantity("ephemeralStorageRequest")
	c.Server.EphemeralStorageLimit = p.quantity("ephemeralStorageLimit")
	p.notAbove("ephemeralStorageRequest", c.Server.EphemeralStorageRequest, "ephemeralStorageLimit", c.Server.EphemeralStorageLimit)
	c.Server.JavaHeap = p.heap("javaHeap", c.Server.MemoryLimit)
	c.Server.StartupTimeoutSeconds = p.intIn("startupTimeoutSeconds", 30, 1800, "seconds the JVM may take to answer /api/status.json")
	c.Server.DumpWriteEnabled = p.boolean("dumpWriteEnabled")

	c.Service.Type = p.oneOf("serviceType", serviceTypes)
	c.Service.Port = p.intIn("servicePort", 1, 65535, "a TCP port")
	c.Address.Mode = AddressMode(p.oneOf("addressMode", addressModes))
	switch name := p.optional("addressName"); {
	case c.Address.Mode == AddressCreate || c.Address.Mode == AddressAdopt:
		c.Address.Name = p.match("addressName", rfc1035Pattern, "a Compute Engine address name: 1 to 63 lowercase letters, digits or hyphens, starting with a letter, not ending with a hyphen")
		if c.Service.Type != "" && c.Service.Type != "LoadBalancer" {
			p.fail("addressMode", string(c.Address.Mode), fmt.Sprintf(`must be "none" unless serviceType is LoadBalancer (it is %q): only a load balancer takes a static address`, c.Service.Type))
		}
	case name != "":
		p.fail("addressName", name, `must be empty when addressMode is "none"; set addressMode to create or adopt to use it`)
	}
	c.Alert.Percent = p.intIn("volumeAlertPercent", 0, 99, "percent of the dumps volume in use above which Cloud Monitoring alerts; 0 declares no alert")
	switch channels := p.optional("volumeAlertChannels"); {
	case c.Alert.Enabled():
		for _, ch := range strings.Split(channels, ",") {
			c.Alert.Channels = append(c.Alert.Channels, strings.TrimSpace(ch))
		}
		if slices.ContainsFunc(c.Alert.Channels, func(ch string) bool { return !channelPattern.MatchString(ch) }) {
			p.fail("volumeAlertChannels", channels, "one or more Cloud Monitoring notification channels, comma-separated, each as projects/PROJECT/notificationChannels/ID (gcloud beta monitoring channels list --format='value(name)'); an alert nobody receives is not an alert")
		}
	case strings.TrimSpace(channels) != "":
		p.fail("volumeAlertChannels", channels, "must be empty when volumeAlertPercent is 0 (no alert); set volumeAlertPercent to declare the alert")
	}
	c.Archive = p.archive(c.Region)
	c.Rotation.Enabled = p.boolean("dumpRotationEnabled")
	c.Rotation.HourUTC = p.intIn("dumpRotationHourUtc", 0, 23, "the hour of the day, in UTC, at which loklak is restarted to close its dump file")
	c.Rotation.Image = p.image("dumpRotationImage")
	p.errs = append(p.errs, UndeclaredKeys(project, setKeys)...)

	if len(p.errs) > 0 {
		return Config{}, &ConfigError{Project: project, Errors: p.errs}
	}
	return c, nil
}

// UndeclaredKeys reports every key of the project's namespace in setKeys (full "project:key" names)
// that the project does not declare, with the nearest declared key as a suggestion. The engine itself
// accepts such keys silently, so a typo would otherwise fall back to a default without a word.
func UndeclaredKeys(project string, setKeys []string) []FieldError {
	var errs []FieldError
	for _, full := range setKeys {
		key, ok := strings.CutPrefix(full, project+":")
		if !ok {
			continue // another package's config, such as gcp:project
		}
		if _, declared := Keys[key]; declared {
			continue
		}
		allowed := "is not a config key of this project (see Pulumi.yaml)"
		if near := nearestKey(key); near != "" {
			allowed += fmt.Sprintf("; did you mean %q?", near)
		}
		errs = append(errs, FieldError{Key: key, Value: key, Allowed: allowed})
	}
	slices.SortFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Key, b.Key) })
	return errs
}

// nearestKey returns the declared key closest to key by edit distance (case-insensitive), if close.
func nearestKey(key string) string {
	best, bestDist := "", 4
	for _, k := range SortedKeys() {
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// parser reads raw values and collects every problem instead of stopping at the first.
type parser struct {
	get  func(string) (string, bool)
	errs []FieldError
}

func (p *parser) fail(key, value, allowed string) {
	p.errs = append(p.errs, FieldError{Key: key, Value: value, Allowed: allowed})
}

// required returns the key's value, or records that it is missing.
func (p *parser) required(key, allowed string) (string, bool) {
	v, ok := p.get(key)
	if !ok || strings.TrimSpace(v) == "" {
		p.fail(key, v, "is required: "+allowed)
		return "", false
	}
	return v, true
}

func (p *parser) optional(key string) string {
	v, _ := p.get(key)
	return v
}

func (p *parser) match(key string, re *regexp.Regexp, allowed string) string {
	v, ok := p.required(key, allowed)
	if ok && !re.MatchString(v) {
		p.fail(key, v, "must be "+allowed)
		return ""
	}
	return v
}

func (p *parser) oneOf(key string, allowed []string) string {
	what := "one of " + strings.Join(allowed, ", ")
	v, ok := p.required(key, what)
	if ok && !slices.Contains(allowed, v) {
		p.fail(key, v, "must be "+what)
		return ""
	}
	return v
}

func (p *parser) intIn(key string, lo, hi int, unit string) int {
	allowed := fmt.Sprintf("an integer from %d to %d (%s)", lo, hi, unit)
	v, ok := p.required(key, allowed)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		p.fail(key, v, "must be "+allowed)
		return 0
	}
	return n
}

func (p *parser) boolean(key string) bool {
	v, ok := p.required(key, "true or false")
	if !ok {
		return false
	}
	if v != "true" && v != "false" {
		p.fail(key, v, "must be true or false")
		return false
	}
	return v == "true"
}

// labels reads an array of "key=value" strings (Pulumi.yaml's config types have no map).
func (p *parser) labels(key string) map[string]string {
	const allowed = `a list of "key=value" strings: keys start with a lowercase letter, keys and values use lowercase letters, digits, "_" and "-", at most 63 characters`
	out := map[string]string{}
	items, _ := p.list(key, allowed)
	for _, item := range items {
		k, v, found := strings.Cut(item, "=")
		if !found || !labelKey.MatchString(k) || !labelValue.MatchString(v) {
			p.fail(key, item, "must be "+allowed)
			continue
		}
		out[k] = v
	}
	return out
}

// list reads an optional array key (the engine hands arrays to the program as JSON text) and returns its
// items and the raw value; unset or blank is an empty list, anything but a list of strings fails.
func (p *parser) list(key, allowed string) ([]string, string) {
	raw := p.optional(key)
	if strings.TrimSpace(raw) == "" {
		return nil, raw
	}
	var items []string
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		p.fail(key, raw, "must be "+allowed)
		return nil, raw
	}
	return items, raw
}

// replicaZones reads the zones of a regional disk: none, or two distinct zones of region.
func (p *parser) replicaZones(key, region string) []string {
	allowed := fmt.Sprintf("empty for a zonal disk, or two distinct zones of the stack's region %q (the region of zone), such as [%q, %q]", region, region+"-a", region+"-b")
	zones, raw := p.list(key, allowed)
	if len(zones) == 0 {
		return nil
	}
	ok := len(zones) == 2 && zones[0] != zones[1]
	for _, z := range zones {
		m := zonePattern.FindStringSubmatch(z)
		ok = ok && m != nil && (region == "" || m[1] == region)
	}
	if !ok {
		p.fail(key, raw, "must be "+allowed)
		return nil
	}
	return zones
}

// snapshot reads an optional snapshot reference and returns it as projects/P/global/snapshots/N, a bare
// name being one of project's snapshots.
func (p *parser) snapshot(key, project string) string {
	v := p.optional(key)
	if v == "" {
		return ""
	}
	m := snapshotPattern.FindStringSubmatch(v)
	if m == nil {
		p.fail(key, v, "must be a snapshot's name (1 to 63 lowercase letters, digits or hyphens, starting with a letter) or projects/PROJECT/global/snapshots/NAME, or empty")
		return ""
	}
	if m[1] != "" {
		project = m[1]
	}
	return fmt.Sprintf("projects/%s/global/snapshots/%s", project, m[3])
}

func (p *parser) quantity(key string) string {
	const allowed = "a Kubernetes quantity such as 500m, 1, 1Gi or 512Mi, greater than zero"
	v, ok := p.required(key, allowed)
	if !ok {
		return ""
	}
	q, err := resource.ParseQuantity(v)
	if err != nil || q.Sign() <= 0 {
		p.fail(key, v, "must be "+allowed)
		return ""
	}
	return v
}

// notAbove checks a request against its limit; both are already valid quantities or empty.
func (p *parser) notAbove(reqKey, req, limKey, lim string) {
	if req == "" || lim == "" {
		return
	}
	reqQ, limQ := resource.MustParse(req), resource.MustParse(lim)
	if reqQ.Cmp(limQ) > 0 {
		p.fail(reqKey, req, fmt.Sprintf("must not exceed %s (%s)", limKey, lim))
	}
}

// heap checks the JVM heap (java -Xmx syntax) and that it leaves room below the memory limit.
func (p *parser) heap(key, memoryLimit string) string {
	const allowed = "a JVM heap size such as 512m or 2g"
	v, ok := p.required(key, allowed)
	if !ok {
		return ""
	}
	m := heapPattern.FindStringSubmatch(v)
	if m == nil {
		p.fail(key, v, "must be "+allowed)
		return ""
	}
	if memoryLimit == "" {
		return v
	}
	shift := map[string]uint{"k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
	limit := resource.MustParse(memoryLimit)
	// Compare in the heap's unit, so a huge number can neither overflow nor fail to parse silently.
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n >= (limit.Value()+(1<<shift)-1)>>shift {
		p.fail(key, v, fmt.Sprintf("must be smaller than memoryLimit (%s): the JVM needs memory beyond its heap, or the container is OOM-killed", memoryLimit))
		return ""
	}
	return v
}

// image requires an explicit, pinned reference: a tag other than latest, or a digest.
func (p *parser) image(key string) string {
	const allowed = "a container image pinned by tag or digest, such as loklak/loklak_server:<tag> or loklak/loklak_server@sha256:<digest> (never :latest)"
	v, ok := p.required(key, allowed)
	if !ok {
		return ""
	}
	m := imagePattern.FindStringSubmatch(v)
	switch {
	case m == nil:
		p.fail(key, v, "must be "+allowed)
	case m[1] == "" && m[2] == "":
		p.fail(key, v, "has neither tag nor digest; must be "+allowed)
	case m[1] == "latest" && m[2] == "":
		p.fail(key, v, "floats with :latest; must be "+allowed)
	default:
		return v
	}
	return ""
}
