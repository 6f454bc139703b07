package gcp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// Type tokens of the resources the stand-in implements.
const (
	DiskType       = "gcp:compute/disk:Disk"
	PolicyType     = "gcp:compute/resourcePolicy:ResourcePolicy"
	AttachmentType = "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment"
	RegionDiskType = "gcp:compute/regionDisk:RegionDisk"
	// RegionAttachmentType attaches a policy to a regional disk.
	RegionAttachmentType = "gcp:compute/regionDiskResourcePolicyAttachment:RegionDiskResourcePolicyAttachment"
	AddressType          = "gcp:compute/address:Address"
)

// Provider is the stand-in for the pulumi-gcp provider's Compute Engine resources, over a Compute.
type Provider struct {
	plugin.UnimplementedProvider

	compute *Compute
	version semver.Version
	// policyLocks serializes the read-modify-write of one IAM policy, as the real provider's per-resource
	// mutex does (gcs rules §3 "Create": the engine creates two members of one bucket at once).
	policyLocks sync.Map // resource -> *sync.Mutex
	// Provider configuration (gcp:project, gcp:zone, gcp:region): the fallbacks the real provider uses
	// for a resource's Optional+Computed project, zone and region.
	project, zone, region string
}

// NewProvider serves the resources over compute and reports version as its plugin version (the version
// the pulumi-gcp SDK in go.mod asks the engine for).
func NewProvider(compute *Compute, version string) (*Provider, error) {
	v, err := semver.ParseTolerant(version)
	if err != nil {
		return nil, fmt.Errorf("plugin version %q: %w", version, err)
	}
	return &Provider{compute: compute, version: v}, nil
}

// kind is one resource type: its rules, over plain values (see plain).
type kind interface {
	// check validates and fills in defaults; failures name the property.
	check(p *Provider, name string, olds, news map[string]any, seed []byte) (map[string]any, []plugin.CheckFailure)
	// diff returns the changed top-level properties and which of them force a replacement.
	diff(p *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string)
	create(p *Provider, inputs map[string]any, preview bool) (id string, state map[string]any, err error)
	// read returns nil state when the resource is gone; inputs are what the engine should record.
	read(p *Provider, id string, oldInputs, oldState map[string]any) (newID string, inputs, state map[string]any, err error)
	update(p *Provider, id string, oldState, news map[string]any, preview bool) (map[string]any, error)
	delete(p *Provider, id string, state map[string]any) error
}

var kinds = map[string]kind{
	DiskType:             diskKind{},
	RegionDiskType:       diskKind{regional: true},
	PolicyType:           policyKind{},
	AttachmentType:       attachmentKind{},
	RegionAttachmentType: attachmentKind{regional: true},
	AddressType:          addressKind{},
	// Cloud Monitoring: the stand-in simulates the project, not only its Compute Engine.
	AlertPolicyType: alertPolicyKind{},
	// Cloud Storage and IAM (../shared/notes/gcs-provider-rules.md).
	BucketType:           bucketKind{},
	AccountType:          accountKind{},
	BucketIAMMemberType:  iamMemberKind{},
	AccountIAMMemberType: iamMemberKind{onAccount: true},
}

func kindOf(t tokens.Type) (kind, error) {
	k, ok := kinds[string(t)]
	if !ok {
		return nil, fmt.Errorf("the Compute Engine stand-in does not implement %s (it implements %s)", t, strings.Join(slices.Sorted(maps.Keys(kinds)), ", "))
	}
	return k, nil
}

// ---- plugin.Provider --------------------------------------------------------------------------------------

// Close implements plugin.Provider.
func (p *Provider) Close() error { return nil }

// GetPluginInfo reports the version the SDK asked for, so the engine raises no version warning.
func (p *Provider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	return plugin.PluginInfo{Version: &p.version}, nil
}

// GetSchema returns a minimal schema: the engine needs none for a Go program's default provider.
func (p *Provider) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	return plugin.GetSchemaResponse{Schema: []byte(fmt.Sprintf(`{"name":"gcp","version":%q}`, p.version))}, nil
}

// CheckConfig accepts the provider configuration as given.
func (p *Provider) CheckConfig(_ context.Context, req plugin.CheckConfigRequest) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

// DiffConfig never replaces the provider: its configuration only supplies fallbacks.
func (p *Provider) DiffConfig(_ context.Context, req plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	if plainMap(req.OldInputs).equal(plainMap(req.NewInputs)) {
		return plugin.DiffResult{Changes: plugin.DiffNone}, nil
	}
	return plugin.DiffResult{Changes: plugin.DiffSome}, nil
}

// Configure takes gcp:project, gcp:zone and gcp:region.
func (p *Provider) Configure(_ context.Context, req plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	cfg := plainMap(req.Inputs)
	p.project, p.zone, p.region = str(cfg["project"]), str(cfg["zone"]), str(cfg["region"])
	return plugin.ConfigureResponse{}, nil
}

// Check implements plugin.Provider.
func (p *Provider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.CheckResponse{}, err
	}
	news := plainMap(req.News)
	if t, ok := k.(intTyped); ok {
		// The bridge converts the inputs to the schema's types before any check; a value that does not
		// convert fails the whole call, as an RPC error rather than a check failure.
		if err := toInts(news, t.ints()); err != nil {
			return plugin.CheckResponse{}, err
		}
	}
	inputs, failures := k.check(p, req.URN.Name(), plainMap(req.Olds), news, req.RandomSeed)
	return plugin.CheckResponse{Properties: toPropertyMap(inputs, nil), Failures: failures}, nil
}

// intTyped is a kind with integer inputs (TypeInt in the schema).
type intTyped interface{ ints() []string }

// toInts converts the named inputs to numbers as the bridge does: a number stays, a string is parsed
// (strconv.ParseInt, so "10" is 10), and anything else that does not parse is an error naming the input.
func toInts(inputs map[string]any, names []string) error {
	for _, key := range names {
		s, ok := inputs[key].(string)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		inputs[key] = float64(n)
	}
	return nil
}

// serverNamed is a kind without a name input: the API names the resource (an alert policy).
type serverNamed interface{ serverNamed() }

// createBeforeDelete is a kind without a name at all (an account's is an output; IAM members have none):
// its replacement is always create-before-delete (gcs-provider-rules.md §0 "Replace order").
type createBeforeDelete interface{ createBeforeDelete() }

// Diff implements plugin.Provider.
func (p *Provider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.DiffResult{}, err
	}
	news := plainMap(req.NewInputs)
	changed, replaces := k.diff(p, plainMap(req.OldInputs), plainMap(req.OldOutputs), news)
	if len(changed) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}, nil
	}
	detailed := map[string]plugin.PropertyDiff{}
	for _, key := range changed {
		kind := plugin.DiffUpdate
		if slices.Contains(replaces, key) {
			kind = plugin.DiffUpdateReplace
		}
		// effectiveLabels and pulumiLabels are outputs: their diff is against the old state.
		detailed[key] = plugin.PropertyDiff{Kind: kind, InputDiff: !slices.Contains(secretOutputs, key)}
	}
	_, unnamed := k.(serverNamed)
	if _, cbd := k.(createBeforeDelete); cbd {
		unnamed = true
	}
	return plugin.DiffResult{
		Changes:      plugin.DiffSome,
		ChangedKeys:  keys(changed),
		ReplaceKeys:  keys(replaces),
		DetailedDiff: detailed,
		// Rules §0: delete-before-replace when the name is explicit (two resources cannot share it),
		// create-before-delete when it was autonamed. A type without a name input (the API names it)
		// is never deleted first: the bridge asks only when an autonamed name was given explicitly.
		DeleteBeforeReplace: len(replaces) > 0 && !unnamed && !defaulted(news, "name"),
	}, nil
}

// Create implements plugin.Provider.
func (p *Provider) Create(_ context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	id, state, err := k.create(p, plainMap(req.Properties), req.Preview)
	if err != nil {
		return plugin.CreateResponse{}, fmt.Errorf("error creating %s: %w", shortType(req.Type), err)
	}
	return plugin.CreateResponse{ID: resource.ID(id), Properties: toPropertyMap(state, secretOutputs)}, nil
}

// Read implements plugin.Provider: refresh, and import when only the ID is given (rules §10).
func (p *Provider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.ReadResponse{}, err
	}
	id, inputs, state, err := k.read(p, string(req.ID), plainMap(req.Inputs), plainMap(req.State))
	if err != nil {
		return plugin.ReadResponse{}, fmt.Errorf("error reading %s %q: %w", shortType(req.Type), req.ID, err)
	}
	if state == nil {
		return plugin.ReadResponse{ReadResult: plugin.ReadResult{}, Status: resource.StatusOK}, nil
	}
	return plugin.ReadResponse{ReadResult: plugin.ReadResult{
		ID:      resource.ID(id),
		Inputs:  toPropertyMap(inputs, nil),
		Outputs: toPropertyMap(state, secretOutputs),
	}, Status: resource.StatusOK}, nil
}

// Update implements plugin.Provider.
func (p *Provider) Update(_ context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.UpdateResponse{}, err
	}
	state, err := k.update(p, string(req.ID), plainMap(req.OldOutputs), plainMap(req.NewInputs), req.Preview)
	if err != nil {
		return plugin.UpdateResponse{}, fmt.Errorf("error updating %s %q: %w", shortType(req.Type), req.ID, err)
	}
	return plugin.UpdateResponse{Properties: toPropertyMap(state, secretOutputs)}, nil
}

// Delete implements plugin.Provider.
func (p *Provider) Delete(_ context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	k, err := kindOf(req.Type)
	if err != nil {
		return plugin.DeleteResponse{}, err
	}
	if err := k.delete(p, string(req.ID), plainMap(req.Outputs)); err != nil {
		return plugin.DeleteResponse{}, fmt.Errorf("error deleting %s %q: %w", shortType(req.Type), req.ID, err)
	}
	return plugin.DeleteResponse{}, nil
}

// SignalCancellation implements plugin.Provider: every call is short, nothing to cancel.
func (p *Provider) SignalCancellation(context.Context) error { return nil }

func shortType(t tokens.Type) string {
	return t.Name().String()
}

// ---- plain values -----------------------------------------------------------------------------------------

// unknown stands for a value not known until the engine applies (a preview's computed value).
type unknown struct{}

// values is a property map as plain Go values: string, float64, bool, []any, values, unknown or nil.
type values map[string]any

func plainMap(m resource.PropertyMap) values {
	out := values{}
	for k, v := range m {
		out[string(k)] = plain(v)
	}
	return out
}

func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return unknown{}
		}
		return plain(o.Element)
	case v.IsComputed():
		return unknown{}
	case v.IsArray():
		var out []any
		for _, e := range v.ArrayValue() {
			out = append(out, plain(e))
		}
		return out
	case v.IsObject():
		return map[string]any(plainMap(v.ObjectValue()))
	case v.IsNull():
		return nil
	default:
		return v.V
	}
}

// secretOutputs are the outputs the provider marks secret (rules §0, labels).
var secretOutputs = []string{"effectiveLabels", "pulumiLabels"}

func toPropertyMap(m map[string]any, secret []string) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		pv := toPropertyValue(v)
		if slices.Contains(secret, k) && !pv.IsComputed() {
			pv = resource.MakeSecret(pv)
		}
		out[resource.PropertyKey(k)] = pv
	}
	return out
}

func toPropertyValue(v any) resource.PropertyValue {
	switch x := v.(type) {
	case unknown:
		return resource.MakeComputed(resource.NewStringProperty(""))
	case values:
		return resource.NewObjectProperty(toPropertyMap(x, nil))
	case map[string]any:
		return resource.NewObjectProperty(toPropertyMap(x, nil))
	case map[string]string:
		m := map[string]any{}
		for k, s := range x {
			m[k] = s
		}
		return resource.NewObjectProperty(toPropertyMap(m, nil))
	case []any:
		arr := make([]resource.PropertyValue, len(x))
		for i, e := range x {
			arr[i] = toPropertyValue(e)
		}
		return resource.NewArrayProperty(arr)
	case []string:
		arr := make([]resource.PropertyValue, len(x))
		for i, e := range x {
			arr[i] = resource.NewStringProperty(e)
		}
		return resource.NewArrayProperty(arr)
	case int:
		return resource.NewNumberProperty(float64(x))
	default:
		return resource.NewPropertyValue(v)
	}
}

func (m values) equal(o values) bool { return same(map[string]any(m), map[string]any(o)) }

// same compares two plain values the way the provider's diff does: an empty map or list equals null.
func same(a, b any) bool {
	if isEmpty(a) && isEmpty(b) {
		return true
	}
	if am, ok := a.(values); ok {
		a = map[string]any(am)
	}
	if bm, ok := b.(values); ok {
		b = map[string]any(bm)
	}
	return reflect.DeepEqual(a, b)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case values:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func isUnknown(v any) bool { _, ok := v.(unknown); return ok }

// containsUnknown reports whether v or anything inside it is unknown.
func containsUnknown(v any) bool {
	switch x := v.(type) {
	case unknown:
		return true
	case map[string]any:
		for _, e := range x {
			if containsUnknown(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if containsUnknown(e) {
				return true
			}
		}
	}
	return false
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) (int, bool) {
	f, ok := v.(float64)
	return int(f), ok
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	if m, ok := v.(map[string]any); ok {
		for k, e := range m {
			out[k] = str(e)
		}
	}
	return out
}

func anyMap(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func keys(ss []string) []resource.PropertyKey {
	out := make([]resource.PropertyKey, len(ss))
	for i, s := range ss {
		out[i] = resource.PropertyKey(s)
	}
	return out
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	maps.Copy(out, m)
	return out
}

// withoutDefaults is a copy of a resource's inputs without the bridge's "__defaults" record: the start of
// its state (rules §10).
func withoutDefaults(in map[string]any) map[string]any {
	state := clone(in)
	delete(state, defaultsKey)
	return state
}

// ---- rules shared by every type -----------------------------------------------------------------------------

// defaultsKey is where the bridge records which inputs it filled in (rules §10, "__defaults").
const defaultsKey = "__defaults"

func defaulted(inputs map[string]any, key string) bool {
	list, _ := inputs[defaultsKey].([]any)
	return slices.Contains(list, any(key))
}

// autoname fills in an omitted name (rules §0): the old autoname when the old inputs say the name was
// defaulted, else <logicalName>-<7 hex> from the engine's random seed. An imported resource's inputs carry
// an empty __defaults, so its omitted name becomes a fresh one (rules §10, gotchas).
func autoname(inputs, olds map[string]any, logical string, seed []byte) []any {
	var defaults []any
	if _, given := inputs["name"]; given {
		return defaults
	}
	if defaulted(olds, "name") && str(olds["name"]) != "" {
		inputs["name"] = olds["name"]
	} else {
		sum := sha256.Sum256(append([]byte(logical), seed...))
		inputs["name"] = logical + "-" + hex.EncodeToString(sum[:])[:7]
	}
	return append(defaults, "name")
}

// diffInputs compares new inputs with the old state (the provider diffs configuration against state),
// falling back to the old inputs for keys the state lacks. A key absent from the new inputs is a change
// only when it was set before and is not Optional+Computed. Unknown new values count as changes.
//
// Only the type's own inputs (props) are compared: the provider reads the old state through the new
// type's schema, so after a change of type (an alias from a RegionDisk to a Disk, or back) an input only
// the old type has (zone, or region and replicaZones) is no change of its own.
func diffInputs(oldInputs, oldState, news map[string]any, props, computed []string) []string {
	var changed []string
	for _, key := range slices.Sorted(maps.Keys(unionKeys(oldInputs, news))) {
		if key == defaultsKey || !slices.Contains(props, key) {
			continue
		}
		nv, inNew := news[key]
		if !inNew || nv == nil {
			if _, wasSet := oldInputs[key]; wasSet && oldInputs[key] != nil && !slices.Contains(computed, key) {
				changed = append(changed, key)
			}
			continue
		}
		if containsUnknown(nv) {
			changed = append(changed, key)
			continue
		}
		old, inState := oldState[key]
		if !inState {
			old = oldInputs[key]
		}
		if !same(old, nv) {
			changed = append(changed, key)
		}
	}
	return changed
}

func unionKeys(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// resolve returns the resource's own value, else the provider configuration's, else an error naming both,
// as the real provider does for project, zone and region.
func resolve(own any, fallback, what string) (string, error) {
	if s := str(own); s != "" {
		return s, nil
	}
	if fallback != "" {
		return fallback, nil
	}
	return "", fmt.Errorf("%s: required field is not set (set it on the resource or as gcp:%s)", what, what)
}

// lastSegment compares self links and short names alike ("projects/p/zones/z/diskTypes/pd-ssd" ~ "pd-ssd").
func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// withLabelOutputs adds to a diff that changes labels the two label outputs the provider reports with
// it: effectiveLabels when the planned labels on the resource (rules §0, SetLabelsDiff: the old effective
// labels, minus the managed keys removed, plus the new managed ones) have other keys than the state's, and
// pulumiLabels when the new labels have other keys than the state's pulumiLabels. A changed value alone
// changes neither's keys, and the provider reports only labels. An unknown labels makes both unknown.
func withLabelOutputs(changed []string, oldState, news map[string]any) []string {
	if !slices.Contains(changed, "labels") {
		return changed
	}
	if containsUnknown(news["labels"]) {
		return sortedUnion(changed, "effectiveLabels", "pulumiLabels")
	}
	managed := stringMap(news["labels"])
	if !sameKeys(plannedLabels(oldState, managed), stringMap(oldState["effectiveLabels"])) {
		changed = sortedUnion(changed, "effectiveLabels")
	}
	if !sameKeys(managed, stringMap(oldState["pulumiLabels"])) {
		changed = sortedUnion(changed, "pulumiLabels")
	}
	return changed
}

// plannedLabels are the labels the provider plans for the resource from its state alone (rules §0,
// SetLabelsDiff): the state's effectiveLabels, minus the keys the state's labels managed and the new
// labels drop, plus the new labels. An update sends them with the state's labelFingerprint.
func plannedLabels(oldState map[string]any, managed map[string]string) map[string]string {
	planned := stringMap(oldState["effectiveLabels"])
	for k := range stringMap(oldState["labels"]) {
		if _, kept := managed[k]; !kept {
			delete(planned, k)
		}
	}
	maps.Copy(planned, managed)
	return planned
}

func sameKeys(a, b map[string]string) bool {
	return slices.Equal(slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)))
}

func sortedUnion(ss []string, more ...string) []string {
	out := slices.Clone(ss)
	for _, s := range more {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// managedLabels are the live labels whose keys the stack set (its state's labels): labels are
// non-authoritative, so Read reports only those, and an import, with no state yet, none (rules §0, §10).
func managedLabels(oldState map[string]any, live map[string]string) map[string]string {
	managed := map[string]string{}
	for k := range stringMap(oldState["labels"]) {
		if v, ok := live[k]; ok {
			managed[k] = v
		}
	}
	return managed
}

// regionalIDs are the import-ID forms of a regional resource in collection ("addresses", say), longest
// first (rules §0, import IDs).
func regionalIDs(collection string) []string {
	return []string{"projects/{project}/regions/{region}/" + collection + "/{name}", "{project}/{region}/{name}", "{region}/{name}", "{name}"}
}

// anyList is a []string as a plain list value.
func anyList(ss []string) []any {
	out := make([]any, 0, len(ss))
	for _, s := range ss {
		out = append(out, s)
	}
	return out
}

// parseImportID matches id against the patterns, tried in order; "{project}", "{zone}" and "{region}" may be
// left out of the shorter ones and come from the provider configuration (rules §0, import IDs).
func parseImportID(id string, patterns []string, fallbacks map[string]string) (map[string]string, error) {
	parts := strings.Split(id, "/")
	for _, pattern := range patterns {
		fields := strings.Split(pattern, "/")
		if len(fields) != len(parts) {
			continue
		}
		out := map[string]string{}
		ok := true
		for i, f := range fields {
			switch {
			case strings.HasPrefix(f, "{") && strings.HasSuffix(f, "}"):
				if parts[i] == "" {
					ok = false
				}
				out[f[1:len(f)-1]] = parts[i]
			case f != parts[i]:
				ok = false
			}
		}
		if !ok {
			continue
		}
		for k, v := range fallbacks {
			if out[k] == "" {
				if v == "" {
					ok = false
				}
				out[k] = v
			}
		}
		if ok {
			return out, nil
		}
	}
	return nil, fmt.Errorf("Import id %q doesn't match any of the accepted formats: %v", id, patterns) //nolint:staticcheck // the provider's message, verbatim
}

// unknownInputs reports every input that is not a property of the type.
func unknownInputs(inputs map[string]any, known []string, typ string) []plugin.CheckFailure {
	var failures []plugin.CheckFailure
	for _, key := range slices.Sorted(maps.Keys(inputs)) {
		if !slices.Contains(known, key) && key != defaultsKey {
			failures = append(failures, failure(key, "%q is not a property of %s", key, typ))
		}
	}
	return failures
}

// withInputs is a preview's state after an update: the old state with the new inputs laid over it.
func withInputs(oldState, news map[string]any) map[string]any {
	state := clone(oldState)
	for k, v := range news {
		if k != defaultsKey {
			state[k] = v
		}
	}
	return state
}

func failure(property, format string, args ...any) plugin.CheckFailure {
	return plugin.CheckFailure{Property: resource.PropertyKey(property), Reason: fmt.Sprintf(format, args...)}
}
