package gcp

import (
	"fmt"
	"path/filepath"
	"strings"
)

// The simulated project's IAM service accounts (../shared/notes/gcs-provider-rules.md §2, §4): one JSON
// document per account at projects/P/serviceAccounts/EMAIL.json, its IAM policy beside it
// (projects/P/serviceAccounts/EMAIL/iam.json). Every request is recorded in calls.log.

// ServiceAccount is an IAM service account as the IAM API reports it (iam/v1 ServiceAccount).
type ServiceAccount struct {
	// Name is projects/P/serviceAccounts/EMAIL: the account's path and its Pulumi ID.
	Name        string `json:"name"`
	ProjectID   string `json:"projectId"`
	UniqueID    string `json:"uniqueId"`
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
	Etag        string `json:"etag"`
}

// ServiceAccountEmail is ACCOUNT_ID@PROJECT.iam.gserviceaccount.com, the email IAM gives an account
// (gcs rules §2 "Outputs").
func ServiceAccountEmail(project, accountID string) string {
	return accountID + "@" + project + ".iam.gserviceaccount.com"
}

// ServiceAccountPath is projects/P/serviceAccounts/EMAIL.
func ServiceAccountPath(project, email string) string {
	return "projects/" + project + "/serviceAccounts/" + email
}

// CreateServiceAccount is POST iam/v1/projects/P/serviceAccounts: a 409 when the account exists.
func (c *Compute) CreateServiceAccount(project, accountID, displayName, description string) (ServiceAccount, error) {
	defer c.lock()()
	body := map[string]any{"accountId": accountID, "serviceAccount": map[string]any{"displayName": displayName, "description": description}}
	if err := c.record("POST", "iam/v1/projects/"+project+"/serviceAccounts", body); err != nil {
		return ServiceAccount{}, err
	}
	email := ServiceAccountEmail(project, accountID)
	path := ServiceAccountPath(project, email)
	if c.exists(path) {
		return ServiceAccount{}, &APIError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("Service account %s already exists within project projects/%s.", accountID, project)}
	}
	a := ServiceAccount{Name: path, ProjectID: project, UniqueID: "1" + c.newID(), Email: email, DisplayName: displayName, Description: description}
	a.Etag = accountEtag(a)
	return a, c.store(path, a)
}

func accountEtag(a ServiceAccount) string {
	return fingerprint(map[string]string{"d": a.DisplayName, "s": a.Description, "x": fmt.Sprint(a.Disabled)})
}

// GetServiceAccount is GET iam/v1/projects/P/serviceAccounts/EMAIL. The project may be "-" (any project,
// as the API allows). A 404 APIError when there is no such account.
func (c *Compute) GetServiceAccount(name string) (ServiceAccount, error) {
	defer c.lock()()
	if err := c.record("GET", "iam/v1/"+name, nil); err != nil {
		return ServiceAccount{}, err
	}
	return c.getServiceAccount(name)
}

func (c *Compute) getServiceAccount(name string) (ServiceAccount, error) {
	project, email, ok := splitAccountName(name)
	if !ok {
		return ServiceAccount{}, invalid("Invalid service account name %q", name)
	}
	if project == "-" {
		matches, err := filepath.Glob(c.file(ServiceAccountPath("*", email)))
		if err != nil {
			return ServiceAccount{}, err
		}
		if len(matches) == 0 {
			return ServiceAccount{}, notFound("serviceAccount", name)
		}
		project = filepath.Base(filepath.Dir(filepath.Dir(matches[0])))
	}
	return load[ServiceAccount](c, "serviceAccount", ServiceAccountPath(project, email))
}

// splitAccountName splits projects/P/serviceAccounts/EMAIL.
func splitAccountName(name string) (project, email string, ok bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "serviceAccounts" || parts[1] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// PatchServiceAccount is PATCH iam/v1/projects/P/serviceAccounts/EMAIL with an update mask
// ("display_name", "description" or both, comma-separated): the masked fields take the given values (an
// absent description clears it, gcs rules §2 "Update"). The etag must be the account's current one.
func (c *Compute) PatchServiceAccount(name, mask, displayName, description, etag string) (ServiceAccount, error) {
	defer c.lock()()
	body := map[string]any{"updateMask": mask, "serviceAccount": map[string]any{"displayName": displayName, "description": description, "etag": etag}}
	if err := c.record("PATCH", "iam/v1/"+name, body); err != nil {
		return ServiceAccount{}, err
	}
	a, err := c.getServiceAccount(name)
	if err != nil {
		return a, err
	}
	if etag != a.Etag {
		return ServiceAccount{}, &APIError{Code: 409, Reason: "aborted", Message: "The etag in the request does not match the service account's"}
	}
	for _, field := range strings.Split(mask, ",") {
		switch field {
		case "display_name":
			a.DisplayName = displayName
		case "description":
			a.Description = description
		default:
			return ServiceAccount{}, invalid("Invalid update mask field %q", field)
		}
	}
	a.Etag = accountEtag(a)
	return a, c.store(a.Name, a)
}

// SetServiceAccountDisabled is POST iam/v1/projects/P/serviceAccounts/EMAIL:disable (or :enable).
func (c *Compute) SetServiceAccountDisabled(name string, disabled bool) (ServiceAccount, error) {
	defer c.lock()()
	verb := ":enable"
	if disabled {
		verb = ":disable"
	}
	if err := c.record("POST", "iam/v1/"+name+verb, nil); err != nil {
		return ServiceAccount{}, err
	}
	a, err := c.getServiceAccount(name)
	if err != nil {
		return a, err
	}
	a.Disabled = disabled
	a.Etag = accountEtag(a)
	return a, c.store(a.Name, a)
}

// DeleteServiceAccount is DELETE iam/v1/projects/P/serviceAccounts/EMAIL: the account and its own policy
// go, and every bucket binding that named it is rewritten to the deleted principal, as the API does
// (gcs rules §5.7). A 404 APIError when it is already gone.
func (c *Compute) DeleteServiceAccount(name string) error {
	defer c.lock()()
	if err := c.record("DELETE", "iam/v1/"+name, nil); err != nil {
		return err
	}
	a, err := c.getServiceAccount(name)
	if err != nil {
		return err
	}
	if err := c.rewriteDeletedMember("serviceAccount:"+a.Email, a.UniqueID); err != nil {
		return err
	}
	return c.remove(a.Name, a.Name+"/iam")
}

// GetServiceAccountIAMPolicy is POST iam/v1/projects/P/serviceAccounts/EMAIL:getIamPolicy: a 404 when the
// account does not exist.
func (c *Compute) GetServiceAccountIAMPolicy(name string) (IAMPolicy, error) {
	defer c.lock()()
	if err := c.record("POST", "iam/v1/"+name+":getIamPolicy?options.requestedPolicyVersion=3", nil); err != nil {
		return IAMPolicy{}, err
	}
	a, err := c.getServiceAccount(name)
	if err != nil {
		return IAMPolicy{}, err
	}
	return c.getPolicy(a.Name + "/iam")
}

// SetServiceAccountIAMPolicy is POST iam/v1/projects/P/serviceAccounts/EMAIL:setIamPolicy with the whole
// policy and the etag read before.
func (c *Compute) SetServiceAccountIAMPolicy(name string, p IAMPolicy) (IAMPolicy, error) {
	defer c.lock()()
	if err := c.record("POST", "iam/v1/"+name+":setIamPolicy", map[string]any{"policy": iamPolicyBody(p)}); err != nil {
		return IAMPolicy{}, err
	}
	a, err := c.getServiceAccount(name)
	if err != nil {
		return IAMPolicy{}, err
	}
	return c.setPolicy(a.Name+"/iam", p)
}
