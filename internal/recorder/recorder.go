// Package recorder runs a Pulumi program under the SDK's mocks and records, as plain values, every
// resource it registers: type, name, inputs, provider, parent, options and dependencies. Tests assert on
// the record instead of chaining ApplyT callbacks.
package recorder

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// LoadBalancerIP is the address the mock gives a LoadBalancer Service (TEST-NET-3, never routed).
const LoadBalancerIP = "203.0.113.10"

// StaticAddressIP is the address the mock reserves for a gcp:compute/address:Address (TEST-NET-2).
const StaticAddressIP = "198.51.100.10"

// Resource is one registered resource.
type Resource struct {
	Type   string
	Name   string
	Custom bool
	// Inputs are the resource's inputs as plain Go values (maps, slices, strings, float64, bool).
	Inputs map[string]any
	// SecretInputs are the top-level inputs the program marked secret, sorted.
	SecretInputs   []string
	Provider       string // "urn::id" of the explicit provider, or "" for the default one
	Parent         string // URN of the parent
	Protect        bool
	RetainOnDelete bool
	ImportID       string
	// ReplaceOnChanges and DeleteBeforeReplace are the replacement options the program set.
	ReplaceOnChanges    []string
	DeleteBeforeReplace bool
	// IgnoreChanges are the input paths whose changes the program tells the engine to ignore.
	IgnoreChanges []string
	// CreateTimeout and UpdateTimeout are the custom timeouts the program set ("" for the default).
	CreateTimeout, UpdateTimeout string
	// Aliases are the former names the resource declares (pulumi.Aliases with a name), sorted; an alias
	// that also names a type reads "type::name".
	Aliases []string
	// DependsOn holds the "type::name" of every resource this one depends on through its inputs.
	DependsOn []string
	// DeletedWith is the "type::name" of the resource whose deletion takes this one along, or "".
	DeletedWith string
}

// Key is "type::name", the form DependsOn uses.
func (r Resource) Key() string { return r.Type + "::" + r.Name }

// Get returns the input at a dotted path such as "spec.csi.volumeHandle".
func (r Resource) Get(path string) any { return Lookup(r.Inputs, path) }

// Lookup returns the value at a dotted path in a decoded JSON object; a number selects a list item.
// It returns nil when any step is missing.
func Lookup(obj map[string]any, path string) any {
	var cur any = obj
	for _, part := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// String returns the input at path as a string ("" when absent or not a string).
func (r Resource) String(path string) string {
	s, _ := r.Get(path).(string)
	return s
}

// Recorder is a pulumi.MockResourceMonitor that remembers what was registered.
type Recorder struct {
	mu        sync.Mutex
	resources []Resource
	// Outputs are the stack outputs the program returned, resolved.
	Outputs map[string]any
	// StrayVolume, when set, is the volume every claim is bound to, instead of the one reserved for it:
	// a cluster where binding went wrong.
	StrayVolume string
	// LostDisks are disk IDs (projects/P/zones/Z/disks/N) Compute Engine no longer has: the disk data
	// sources answer "<id> not found" for them, and describe every other disk.
	LostDisks []string
	// Invokes are the data sources the program read, by token, in order.
	Invokes []string
}

// NewResource records the registration and answers with the inputs as outputs, plus what a real
// provider would add that the program reads back (IDs, a load balancer address).
func (r *Recorder) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	rec := Resource{
		Type:     args.TypeToken,
		Name:     args.Name,
		Custom:   args.Custom,
		Inputs:   revealSecrets(args.Inputs).Mappable(),
		Provider: args.Provider,
		ImportID: args.ID,
	}
	for key, v := range args.Inputs {
		if v.ContainsSecrets() {
			rec.SecretInputs = append(rec.SecretInputs, string(key))
		}
	}
	slices.Sort(rec.SecretInputs)
	if rpc := args.RegisterRPC; rpc != nil {
		rec.Parent = rpc.GetParent()
		rec.Protect = rpc.GetProtect()
		rec.RetainOnDelete = rpc.GetRetainOnDelete()
		for _, urn := range rpc.GetDependencies() {
			u := resource.URN(urn)
			rec.DependsOn = append(rec.DependsOn, string(u.Type())+"::"+u.Name())
		}
		slices.Sort(rec.DependsOn)
		if with := resource.URN(rpc.GetDeletedWith()); with != "" {
			rec.DeletedWith = string(with.Type()) + "::" + with.Name()
		}
		rec.ReplaceOnChanges = rpc.GetReplaceOnChanges()
		rec.DeleteBeforeReplace = rpc.GetDeleteBeforeReplace()
		rec.IgnoreChanges = rpc.GetIgnoreChanges()
		if ct := rpc.GetCustomTimeouts(); ct != nil {
			rec.CreateTimeout, rec.UpdateTimeout = ct.GetCreate(), ct.GetUpdate()
		}
		for _, a := range rpc.GetAliases() {
			switch spec := a.GetSpec(); {
			case spec == nil || spec.GetName() == "":
			case spec.GetType() != "":
				rec.Aliases = append(rec.Aliases, spec.GetType()+"::"+spec.GetName())
			default:
				rec.Aliases = append(rec.Aliases, spec.GetName())
			}
		}
		slices.Sort(rec.Aliases)
	}
	r.mu.Lock()
	r.resources = append(r.resources, rec)
	r.mu.Unlock()

	state := args.Inputs.Copy()
	id := args.Name + "-id"
	switch args.TypeToken {
	case "gcp:compute/disk:Disk":
		id = fmt.Sprintf("projects/%s/zones/%s/disks/%s", rec.String("project"), rec.String("zone"), rec.String("name"))
	case "gcp:compute/regionDisk:RegionDisk":
		id = fmt.Sprintf("projects/%s/regions/%s/disks/%s", rec.String("project"), rec.String("region"), rec.String("name"))
		// The provider reports replica zones as v1 URLs, not as the names it was given.
		if zones := state["replicaZones"]; zones.IsArray() {
			urls := make([]resource.PropertyValue, len(zones.ArrayValue()))
			for i, z := range zones.ArrayValue() {
				urls[i] = resource.NewStringProperty(fmt.Sprintf("https://www.googleapis.com/compute/v1/projects/%s/zones/%s", rec.String("project"), z.StringValue()))
			}
			state["replicaZones"] = resource.NewArrayProperty(urls)
		}
	case "kubernetes:core/v1:PersistentVolumeClaim":
		if spec := state["spec"]; spec.IsObject() {
			bound := spec.ObjectValue().Copy()
			bound["volumeName"] = resource.NewStringProperty(r.bindingFor(rec))
			state["spec"] = resource.NewObjectProperty(bound)
		}
	case "gcp:monitoring/alertPolicy:AlertPolicy":
		id = fmt.Sprintf("projects/%s/alertPolicies/1", rec.String("project")) // the API assigns the name
		state["name"] = resource.NewStringProperty(id)
	case "gcp:storage/bucket:Bucket":
		id = rec.String("name")
		state["url"] = resource.NewStringProperty("gs://" + id) // gcs rules §1, Outputs
	case "gcp:serviceaccount/account:Account":
		email := fmt.Sprintf("%s@%s.iam.gserviceaccount.com", rec.String("accountId"), rec.String("project"))
		id = fmt.Sprintf("projects/%s/serviceAccounts/%s", rec.String("project"), email) // gcs rules §2
		state["email"] = resource.NewStringProperty(email)
		state["name"] = resource.NewStringProperty(id)
		state["member"] = resource.NewStringProperty("serviceAccount:" + email)
	case "gcp:compute/address:Address":
		state["address"] = resource.NewStringProperty(StaticAddressIP)
	case "kubernetes:core/v1:Service":
		if rec.String("spec.type") == "LoadBalancer" {
			state["status"] = resource.NewPropertyValue(map[string]any{
				"loadBalancer": map[string]any{"ingress": []any{map[string]any{"ip": LoadBalancerIP}}},
			})
		}
	}
	return id, state, nil
}

// bindingFor is the volume Kubernetes' PV controller binds claim to: the one its spec names, else a
// volume reserved for it by spec.claimRef, else none ("", the claim stays Pending).
func (r *Recorder) bindingFor(claim Resource) string {
	if r.StrayVolume != "" {
		return r.StrayVolume
	}
	if named := claim.String("spec.volumeName"); named != "" {
		return named
	}
	for _, pv := range r.OfType("kubernetes:core/v1:PersistentVolume") {
		if pv.String("spec.claimRef.name") == claim.String("metadata.name") &&
			pv.String("spec.claimRef.namespace") == claim.String("metadata.namespace") {
			return pv.String("metadata.name")
		}
	}
	return ""
}

// revealSecrets returns m with every secret replaced by its value, so tests read secrets like any input
// (SecretInputs says which were secret).
func revealSecrets(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = revealSecret(v)
	}
	return out
}

func revealSecret(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return revealSecret(v.SecretValue().Element)
	case v.IsObject():
		return resource.NewObjectProperty(revealSecrets(v.ObjectValue()))
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = revealSecret(e)
		}
		return resource.NewArrayProperty(arr)
	}
	return v
}

// Call answers the disk data sources, as the GCP provider does (a missing disk is an error naming its
// ID), and fails any other invoke, which the program does not make.
func (r *Recorder) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	r.mu.Lock()
	r.Invokes = append(r.Invokes, args.Token)
	r.mu.Unlock()
	in := args.Args.Mappable()
	var id string
	switch args.Token {
	case "gcp:compute/getDisk:getDisk":
		id = fmt.Sprintf("projects/%v/zones/%v/disks/%v", in["project"], in["zone"], in["name"])
	case "gcp:compute/getRegionDisk:getRegionDisk":
		id = fmt.Sprintf("projects/%v/regions/%v/disks/%v", in["project"], in["region"], in["name"])
	default:
		return nil, fmt.Errorf("unexpected invoke %s", args.Token)
	}
	if slices.Contains(r.LostDisks, id) {
		return nil, fmt.Errorf("%s not found", id)
	}
	return resource.NewPropertyMapFromMap(map[string]any{"id": id, "name": in["name"]}), nil
}

// Resources returns what was registered, in registration order.
func (r *Recorder) Resources() []Resource {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Resource(nil), r.resources...)
}

// OfType returns the registered resources of one type.
func (r *Recorder) OfType(typ string) []Resource {
	var out []Resource
	for _, res := range r.Resources() {
		if res.Type == typ {
			out = append(out, res)
		}
	}
	return out
}

// One returns the single resource of a type, failing the test when there is not exactly one.
func (r *Recorder) One(t testing.TB, typ string) Resource {
	t.Helper()
	got := r.OfType(typ)
	if len(got) != 1 {
		t.Fatalf("want exactly one %s, got %d", typ, len(got))
	}
	return got[0]
}

// ByURN finds a resource by a URN (as in Parent, or the URN part of Provider).
func (r *Recorder) ByURN(urn string) (Resource, bool) {
	u := resource.URN(urn)
	for _, res := range r.Resources() {
		if res.Type == string(u.Type()) && res.Name == u.Name() {
			return res, true
		}
	}
	return Resource{}, false
}

// Run runs program under mocks for project/stack with config (keys without namespace), the way the
// engine would pass it. The program returns its stack outputs; Run records them resolved.
func Run(t testing.TB, project, stack string, config stackconfig.Values, program func(*pulumi.Context) (pulumi.Map, error)) (*Recorder, error) {
	t.Helper()
	rec := &Recorder{}
	return rec, rec.Run(t, project, stack, config, program)
}

// Run is the package's Run with this recorder, for a test that sets how the mock cluster answers.
func (r *Recorder) Run(t testing.TB, project, stack string, config stackconfig.Values, program func(*pulumi.Context) (pulumi.Map, error)) error {
	t.Helper()
	t.Setenv("PULUMI_CONFIG", config.EngineJSON(project))
	return r.run(project, stack, program)
}

// RunProgram is Run outside tests (benchmarks): it sets PULUMI_CONFIG for the run and restores it
// afterwards, so it must not run concurrently with another program in the same process.
func RunProgram(project, stack string, config stackconfig.Values, program func(*pulumi.Context) (pulumi.Map, error)) (*Recorder, error) {
	old, had := os.LookupEnv("PULUMI_CONFIG")
	if err := os.Setenv("PULUMI_CONFIG", config.EngineJSON(project)); err != nil {
		return nil, err
	}
	rec := &Recorder{}
	err := rec.run(project, stack, program)
	restore := os.Unsetenv("PULUMI_CONFIG")
	if had {
		restore = os.Setenv("PULUMI_CONFIG", old)
	}
	return rec, errors.Join(err, restore)
}

func (r *Recorder) run(project, stack string, program func(*pulumi.Context) (pulumi.Map, error)) error {
	return pulumi.RunErr(func(ctx *pulumi.Context) error {
		outs, err := program(ctx)
		if err != nil {
			return err
		}
		outs.ToMapOutput().ApplyT(func(m map[string]any) map[string]any {
			r.mu.Lock()
			r.Outputs = m
			r.mu.Unlock()
			return m
		})
		return nil
	}, pulumi.WithMocks(project, stack, r))
}

// Manifests returns the inputs of every Kubernetes object registered, in registration order: exactly
// what the provider would send, ready for kubectl.
func (r *Recorder) Manifests() []map[string]any {
	var out []map[string]any
	for _, res := range r.Resources() {
		if res.Custom && strings.HasPrefix(res.Type, "kubernetes:") {
			out = append(out, res.Inputs)
		}
	}
	return out
}
