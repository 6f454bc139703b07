package gcp

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
)

// Type tokens of the two IAM member types (../shared/notes/gcs-provider-rules.md §3, §4; "gcs rules"
// below). Note the lowercase i in iAMMember.
const (
	BucketIAMMemberType  = "gcp:storage/bucketIAMMember:BucketIAMMember"
	AccountIAMMemberType = "gcp:serviceaccount/iAMMember:IAMMember"
)

// iamMemberKind is one IAM member: a single member of a single role's binding, on a bucket (BucketIAMMember)
// or on a service account (IAMMember, onAccount). It is non-authoritative: Create merges the member into
// the resource's policy and Delete takes it out, each a read-modify-write of the whole policy (gcs rules
// §3 "Create", "Delete").
//
// Every input is ForceNew and a replacement is create-before-delete, as in this provider version
// ([RUN] dbr=false). When the new member denotes the same binding as the old one, Create merges nothing
// and the old one's Delete then removes the grant: pulumi-gcp#2463, gcs rules §5.1. The stand-in behaves
// the same; a program must ask for delete-before-replace itself.
type iamMemberKind struct{ onAccount bool }

var (
	// memberRE is validateIAMMember's regexp, unanchored as in the provider ([IM] L28-46).
	memberRE = regexp.MustCompile(`(.+:.+|projectOwners|projectReaders|projectWriters|allUsers|allAuthenticatedUsers)`)
	// serviceAccountIDRE is the provider's check of serviceAccountId ([V] L48-59), unanchored at the start:
	// projects/(P|-)/serviceAccounts/EMAIL; a bare email or a numeric unique ID fails (gcs rules §4).
	serviceAccountIDRE = regexp.MustCompile(`projects/(?:(?:[-a-z0-9]{1,63}\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)|-)/serviceAccounts/((?:(?:[-a-z0-9]{1,63}\.)*(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?):)?(?:[0-9]{1,19}|(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?))@[a-z]+.gserviceaccount.com$|[0-9]{1,20}-compute@developer.gserviceaccount.com|[a-z](?:[-a-z0-9]{4,28}[a-z0-9])@[-a-z0-9\.]{1,63}\.iam\.gserviceaccount\.com$)`)
)

func (k iamMemberKind) createBeforeDelete() {}

func (k iamMemberKind) typ() string {
	if k.onAccount {
		return AccountIAMMemberType
	}
	return BucketIAMMemberType
}

// target is the input naming the resource the policy belongs to.
func (k iamMemberKind) target() string {
	if k.onAccount {
		return "serviceAccountId"
	}
	return "bucket"
}

func (k iamMemberKind) props() []string { return []string{k.target(), "role", "member", "condition"} }

// check: target, role and member required; role not validated (gcs rules §3); member by validateIAMMember;
// serviceAccountId by its regexp (gcs rules §4).
func (k iamMemberKind) check(_ *Provider, _ string, _, news map[string]any, _ []byte) (map[string]any, []plugin.CheckFailure) {
	inputs := clone(news)
	failures := unknownInputs(inputs, k.props(), k.typ())
	for _, key := range []string{k.target(), "role", "member"} {
		if v, ok := inputs[key]; !ok || v == nil {
			failures = append(failures, failure(key, "Missing required argument. The argument %q is required, but no definition was found.", snake(key)))
		}
	}
	if m, ok := inputs["member"].(string); ok {
		switch {
		case strings.HasPrefix(m, "deleted:"):
			failures = append(failures, failure("member", "invalid value for member (Terraform does not support IAM members for deleted principals)"))
		case !memberRE.MatchString(m):
			failures = append(failures, failure("member", "invalid value for member (IAM members must have one of the values outlined here: https://cloud.google.com/billing/docs/reference/rest/v1/Policy#Binding)"))
		}
	}
	if id, ok := inputs["serviceAccountId"].(string); ok && k.onAccount && !serviceAccountIDRE.MatchString(id) {
		failures = append(failures, failure("serviceAccountId", "\"service_account_id\" (%q) doesn't match regexp %q", id, serviceAccountIDRE.String()))
	}
	inputs[defaultsKey] = []any{}
	return inputs, failures
}

func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// diff: every change replaces (gcs rules §3, §4). A bucket compares by its last path segment
// (CompareResourceNames: NAME, b/NAME and gs://NAME alike); a serviceAccountId exactly (projects/-/...
// is not projects/P/...); a member case-insensitively, but for allUsers, allAuthenticatedUsers and
// principal* members.
func (k iamMemberKind) diff(_ *Provider, oldInputs, oldState, news map[string]any) (changed, replaces []string) {
	changed = diffInputs(oldInputs, oldState, news, []string{"role", "condition"}, nil)
	for _, key := range []string{k.target(), "member"} {
		nv := news[key]
		old, inState := oldState[key]
		if !inState {
			old = oldInputs[key]
		}
		switch {
		case containsUnknown(nv):
		case key == "bucket" && lastSegment(str(old)) == lastSegment(str(nv)):
			continue
		case key == "member" && sameMember(str(old), str(nv)):
			continue
		case key == "serviceAccountId" && str(old) == str(nv):
			continue
		}
		changed = append(changed, key)
	}
	slices.Sort(changed)
	return changed, slices.Clone(changed)
}

// bucketOfRef is the bucket the updater takes from a bucket input: b/{bucket} or {bucket}, up to the first
// slash ([SBI] L51-79). gs://NAME gives "gs:", which is no bucket (gcs rules §3: pass the bucket's name).
func bucketOfRef(ref string) string {
	ref = strings.TrimPrefix(ref, "b/")
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		ref = ref[:i]
	}
	return ref
}

func conditionOf(v any) *IAMCondition {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	return &IAMCondition{Expression: str(m["expression"]), Title: str(m["title"]), Description: str(m["description"])}
}

// resource is the policy's owner as the provider names it: b/NAME, or the service account's name.
func (k iamMemberKind) resource(in map[string]any) string {
	if k.onAccount {
		return str(in["serviceAccountId"])
	}
	return "b/" + bucketOfRef(str(in["bucket"]))
}

func (k iamMemberKind) getPolicy(p *Provider, resource string) (IAMPolicy, error) {
	var policy IAMPolicy
	var err error
	if k.onAccount {
		policy, err = p.compute.GetServiceAccountIAMPolicy(resource)
	} else {
		policy, err = p.compute.GetBucketIAMPolicy(strings.TrimPrefix(resource, "b/"))
	}
	if err != nil {
		what := "storage bucket"
		if k.onAccount {
			what = "service account"
		}
		return IAMPolicy{}, fmt.Errorf("Error retrieving IAM policy for %s %q: %w", what, resource, err) // the provider's message (gcs rules §3)
	}
	return policy, nil
}

func (k iamMemberKind) setPolicy(p *Provider, resource string, policy IAMPolicy) error {
	var err error
	if k.onAccount {
		_, err = p.compute.SetServiceAccountIAMPolicy(resource, policy)
	} else {
		_, err = p.compute.SetBucketIAMPolicy(strings.TrimPrefix(resource, "b/"), policy)
	}
	if err != nil {
		return fmt.Errorf("Error setting IAM policy for %s: %w", resource, err) // the provider's message
	}
	return nil
}

// memberID is RESOURCE/ROLE/member, the member lower-cased, and /CONDITION_TITLE when conditional
// ([IM] L230-233).
func memberID(resource, role, member string, cond *IAMCondition) string {
	id := resource + "/" + role + "/" + strings.ToLower(member)
	if cond != nil {
		id += "/" + cond.Title
	}
	return id
}

// create: GET the policy, merge the binding in, set it, then the provider's confirming reads (three, and
// Read's one; gcs rules §3 "Create", §4 "Create").
func (k iamMemberKind) create(p *Provider, in map[string]any, preview bool) (string, map[string]any, error) {
	resource := k.resource(in)
	state := withoutDefaults(in)
	if preview {
		state["etag"] = unknown{}
		return "", state, nil
	}
	role, member, cond := str(in["role"]), str(in["member"]), conditionOf(in["condition"])
	defer p.lockPolicy(resource)()
	policy, err := k.getPolicy(p, resource)
	if err != nil {
		return "", nil, err
	}
	policy.Version = 3
	if err := k.setPolicy(p, resource, policy.withMember(role, member, cond)); err != nil {
		return "", nil, err
	}
	for range 4 {
		if policy, err = k.getPolicy(p, resource); err != nil {
			return "", nil, err
		}
	}
	state[k.target()], state["etag"] = resource, policy.Etag
	return memberID(resource, role, member, cond), state, nil
}

// read: the member drops from state when the resource, the binding or the member is gone (gcs rules §3
// "Read when gone", §5.7). Import takes "RESOURCE ROLE MEMBER [CONDITION_TITLE]" (gcs rules §3, §4).
func (k iamMemberKind) read(p *Provider, id string, oldInputs, oldState map[string]any) (string, map[string]any, map[string]any, error) {
	in := clone(oldState)
	if len(in) == 0 {
		fields := strings.Fields(id)
		if len(fields) < 3 {
			return "", nil, nil, fmt.Errorf("wrong number of parts to %s id %s; expected 'resource_name role member [condition_title]'", k.typ(), id)
		}
		in = map[string]any{k.target(): fields[0], "role": fields[1], "member": fields[2]}
		if !k.onAccount {
			in["bucket"] = "b/" + bucketOfRef(fields[0])
		}
		if len(fields) > 3 {
			in["condition"] = map[string]any{"title": strings.Join(fields[3:], " ")}
		}
	}
	resource := k.resource(in)
	policy, err := k.getPolicy(p, resource)
	if IsNotFound(err) {
		return "", nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	cond := conditionOf(in["condition"])
	if cond != nil && cond.Expression == "" { // import by title: the binding's condition
		for _, b := range policy.Bindings {
			if b.Role == str(in["role"]) && b.Condition != nil && b.Condition.Title == cond.Title {
				cond = b.Condition
				in["condition"] = map[string]any{"title": cond.Title, "expression": cond.Expression, "description": cond.Description}
			}
		}
	}
	if !policy.Has(str(in["role"]), str(in["member"]), cond) {
		return "", nil, nil, nil
	}
	inputs := clone(oldInputs)
	if len(oldInputs) == 0 {
		inputs = clone(in)
		delete(inputs, "etag")
		inputs[defaultsKey] = []any{}
	}
	state := withoutDefaults(in)
	state["etag"] = policy.Etag
	return memberID(resource, str(in["role"]), str(in["member"]), cond), inputs, state, nil
}

// update never happens: every input replaces.
func (k iamMemberKind) update(_ *Provider, id string, _, _ map[string]any, _ bool) (map[string]any, error) {
	return nil, fmt.Errorf("%s %s: every input forces a replacement; there is no update", k.typ(), id)
}

// delete: read-modify-write of the policy without the member (gcs rules §3 "Delete"); a resource already
// gone takes its policy with it.
func (k iamMemberKind) delete(p *Provider, _ string, state map[string]any) error {
	resource := k.resource(state)
	defer p.lockPolicy(resource)()
	policy, err := k.getPolicy(p, resource)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return k.setPolicy(p, resource, policy.withoutMember(str(state["role"]), str(state["member"]), conditionOf(state["condition"])))
}

// lockPolicy holds the provider's mutex of one IAM policy (a bucket's, a service account's) and returns
// its unlock: the real provider serializes its read-modify-writes of a policy within the plugin, so two
// members of one bucket created at once do not meet the API's 409 (gcs rules §3 "Create").
func (p *Provider) lockPolicy(resource string) func() {
	m, _ := p.policyLocks.LoadOrStore(resource, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}
