package gcp

import (
	"slices"
	"strings"
)

// IAM policies of the simulated project's buckets and service accounts, as the Storage and IAM APIs keep
// them (../shared/notes/gcs-provider-rules.md §3, §4): one document per resource, beside the resource's
// own (storage/v1/b/NAME/iam.json, projects/P/serviceAccounts/EMAIL/iam.json). A resource without one has
// the empty policy.

// IAMPolicy is an IAM policy (v3): its bindings and the etag a setIamPolicy must carry.
type IAMPolicy struct {
	Version  int          `json:"version"`
	Etag     string       `json:"etag"`
	Bindings []IAMBinding `json:"bindings,omitempty"`
}

// IAMBinding grants Role to Members, under Condition when it has one.
type IAMBinding struct {
	Role      string        `json:"role"`
	Members   []string      `json:"members"`
	Condition *IAMCondition `json:"condition,omitempty"`
}

// IAMCondition is a binding's IAM condition (a CEL expression with a title).
type IAMCondition struct {
	Expression  string `json:"expression"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

func (b IAMBinding) sameKey(role string, cond *IAMCondition) bool {
	if b.Role != role {
		return false
	}
	if b.Condition == nil || cond == nil {
		return b.Condition == nil && cond == nil
	}
	return *b.Condition == *cond
}

// Has reports whether the policy grants role to member under cond. Members compare as the provider
// compares them (gcs rules §3: case-insensitively, but for allUsers, allAuthenticatedUsers and principal*).
func (p IAMPolicy) Has(role, member string, cond *IAMCondition) bool {
	for _, b := range p.Bindings {
		if b.sameKey(role, cond) && slices.ContainsFunc(b.Members, func(m string) bool { return sameMember(m, member) }) {
			return true
		}
	}
	return false
}

// withMember is the policy with member added to the binding of role and cond (gcs rules §3 "Create":
// merged into the existing bindings); a member already there is not added twice.
func (p IAMPolicy) withMember(role, member string, cond *IAMCondition) IAMPolicy {
	out := p.clone()
	if out.Has(role, member, cond) {
		return out
	}
	for i, b := range out.Bindings {
		if b.sameKey(role, cond) {
			out.Bindings[i].Members = append(b.Members, member)
			return out
		}
	}
	out.Bindings = append(out.Bindings, IAMBinding{Role: role, Members: []string{member}, Condition: cond})
	return out
}

// withoutMember is the policy without member in the binding of role and cond; a binding left empty goes.
func (p IAMPolicy) withoutMember(role, member string, cond *IAMCondition) IAMPolicy {
	out := p.clone()
	var kept []IAMBinding
	for _, b := range out.Bindings {
		if b.sameKey(role, cond) {
			b.Members = slices.DeleteFunc(b.Members, func(m string) bool { return sameMember(m, member) })
		}
		if len(b.Members) > 0 {
			kept = append(kept, b)
		}
	}
	out.Bindings = kept
	return out
}

func (p IAMPolicy) clone() IAMPolicy {
	out := p
	out.Bindings = nil
	for _, b := range p.Bindings {
		b.Members = slices.Clone(b.Members)
		out.Bindings = append(out.Bindings, b)
	}
	return out
}

// policyEtag is a hash of the bindings: it changes whenever they do, whoever changes them.
func policyEtag(p IAMPolicy) string {
	var parts []string
	for _, b := range p.Bindings {
		c := ""
		if b.Condition != nil {
			c = b.Condition.Title + "\x00" + b.Condition.Expression + "\x00" + b.Condition.Description
		}
		parts = append(parts, b.Role+"\x00"+c+"\x00"+strings.Join(b.Members, ","))
	}
	return "Bw" + fingerprint(map[string]string{"b": strings.Join(parts, "\x01")})
}

// caseSensitiveMember reports the members the provider compares exactly ([IM] L20-26).
func caseSensitiveMember(m string) bool {
	return strings.Contains(m, "allUsers") || strings.Contains(m, "allAuthenticatedUsers") ||
		strings.HasPrefix(m, "principal:") || strings.HasPrefix(m, "principalSet:") || strings.HasPrefix(m, "principalHierarchy:")
}

func sameMember(a, b string) bool {
	if caseSensitiveMember(a) || caseSensitiveMember(b) {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// getPolicy loads the policy document at path (the empty v1 policy when there is none). The caller
// holds the lock and has checked that the resource exists.
func (c *Compute) getPolicy(path string) (IAMPolicy, error) {
	if !c.exists(path) {
		p := IAMPolicy{Version: 1}
		p.Etag = policyEtag(p)
		return p, nil
	}
	return load[IAMPolicy](c, "policy", path)
}

// setPolicy stores p at path when its etag is the current policy's (a 409 otherwise, as the IAM APIs
// answer a concurrent change), with a new etag.
func (c *Compute) setPolicy(path string, p IAMPolicy) (IAMPolicy, error) {
	current, err := c.getPolicy(path)
	if err != nil {
		return IAMPolicy{}, err
	}
	if p.Etag != current.Etag {
		return IAMPolicy{}, &APIError{Code: 409, Reason: "aborted", Message: "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."}
	}
	p.Etag = policyEtag(p)
	if p.Version == 0 {
		p.Version = 1
	}
	return p, c.store(path, p)
}

func bucketPolicyPath(bucket string) string { return BucketPath(bucket) + "/iam" }

// GetBucketIAMPolicy is GET storage/v1/b/NAME/iam?optionsRequestedPolicyVersion=3: a 404 naming that path
// when the bucket does not exist.
func (c *Compute) GetBucketIAMPolicy(bucket string) (IAMPolicy, error) {
	defer c.lock()()
	path := bucketPolicyPath(bucket)
	if err := c.record("GET", path+"?optionsRequestedPolicyVersion=3", nil); err != nil {
		return IAMPolicy{}, err
	}
	if _, err := c.getBucket(bucket); err != nil {
		if IsNotFound(err) {
			return IAMPolicy{}, notFound("policy", path)
		}
		return IAMPolicy{}, err
	}
	return c.getPolicy(path)
}

// SetBucketIAMPolicy is PUT storage/v1/b/NAME/iam with the whole policy and the etag read before.
func (c *Compute) SetBucketIAMPolicy(bucket string, p IAMPolicy) (IAMPolicy, error) {
	defer c.lock()()
	path := bucketPolicyPath(bucket)
	if err := c.record("PUT", path, iamPolicyBody(p)); err != nil {
		return IAMPolicy{}, err
	}
	if _, err := c.getBucket(bucket); err != nil {
		if IsNotFound(err) {
			return IAMPolicy{}, notFound("policy", path)
		}
		return IAMPolicy{}, err
	}
	return c.setPolicy(path, p)
}

// iamPolicyBody is a setIamPolicy body as calls.log records it: role -> members (conditions by title).
func iamPolicyBody(p IAMPolicy) map[string]any {
	bindings := map[string]any{}
	for _, b := range p.Bindings {
		key := b.Role
		if b.Condition != nil {
			key += " if " + b.Condition.Title
		}
		bindings[key] = anyList(b.Members)
	}
	return map[string]any{"bindings": bindings, "etag": p.Etag, "version": p.Version}
}

// rewriteDeletedMember does what the API does to every bucket policy when a service account is deleted
// (gcs rules §5.7): member becomes deleted:MEMBER?uid=UNIQUE_ID. The caller holds the lock.
func (c *Compute) rewriteDeletedMember(member, uniqueID string) error {
	buckets, err := loadAll[StorageBucket](c, BucketPath("*.json"))
	if err != nil {
		return err
	}
	deleted := "deleted:" + member + "?uid=" + uniqueID
	for _, b := range buckets {
		path := bucketPolicyPath(b.Name)
		if !c.exists(path) {
			continue
		}
		p, err := c.getPolicy(path)
		if err != nil {
			return err
		}
		changed := false
		for i, bind := range p.Bindings {
			for j, m := range bind.Members {
				if strings.EqualFold(m, member) {
					p.Bindings[i].Members[j], changed = deleted, true
				}
			}
		}
		if changed {
			p.Etag = policyEtag(p)
			if err := c.store(path, p); err != nil {
				return err
			}
		}
	}
	return nil
}
