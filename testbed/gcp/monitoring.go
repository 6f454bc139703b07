package gcp

import (
	"fmt"
	"os"
	"time"
)

// The simulated project's Cloud Monitoring: alert policies and the notification channels they name
// (monitoring-rules.md). Channels are made outside any stack (in the console, or by gcloud), so tests put them.

// AlertPolicy is one alert policy as the Monitoring API keeps it: its server-assigned name and the
// policy's fields as the provider sent them.
type AlertPolicy struct {
	Name    string         `json:"name"` // projects/P/alertPolicies/ID
	Project string         `json:"project"`
	Policy  map[string]any `json:"policy"`
	// CreationTime is when the API created it (the provider's creationRecord.mutateTime).
	CreationTime string `json:"creationTime"`
}

// NotificationChannel is a channel an alert policy can name.
type NotificationChannel struct {
	Name        string `json:"name"` // projects/P/notificationChannels/ID
	Type        string `json:"type"` // email, sms, pubsub, ...
	DisplayName string `json:"displayName"`
}

// AlertPolicyPath is projects/P/alertPolicies/ID: the policy's name and Pulumi ID.
func AlertPolicyPath(project, id string) string {
	return fmt.Sprintf("projects/%s/alertPolicies/%s", project, id)
}

// maxConditions is how many conditions one policy may hold (monitoring-rules.md).
const maxConditions = 6

// PutNotificationChannel stores a channel as it is, without an API call (one made in the console).
func (c *Compute) PutNotificationChannel(ch NotificationChannel) error {
	defer c.lock()()
	return c.store(ch.Name, ch)
}

// checkPolicy is what the API checks of a policy on create and patch (monitoring-rules.md): at most six
// conditions, and every notification channel exists in the simulated project.
func (c *Compute) checkPolicy(policy map[string]any) error {
	if conditions, _ := policy["conditions"].([]any); len(conditions) > maxConditions {
		return invalid("An alerting policy can have at most %d conditions, got %d", maxConditions, len(conditions))
	}
	channels, _ := policy["notificationChannels"].([]any)
	for _, ch := range channels {
		if !c.exists(str(ch)) {
			return &APIError{Code: 404, Reason: "notFound", Message: fmt.Sprintf("Notification channel %s does not exist", str(ch))}
		}
	}
	return nil
}

// CreateAlertPolicy creates a policy; the API assigns its name.
func (c *Compute) CreateAlertPolicy(project string, policy map[string]any) (AlertPolicy, error) {
	defer c.lock()()
	if err := c.record("POST", fmt.Sprintf("projects/%s/alertPolicies", project), policy); err != nil {
		return AlertPolicy{}, err
	}
	if err := c.checkPolicy(policy); err != nil {
		return AlertPolicy{}, err
	}
	a := AlertPolicy{Name: AlertPolicyPath(project, c.newID()), Project: project, Policy: policy,
		CreationTime: c.now().UTC().Format(time.RFC3339)}
	return a, c.store(a.Name, a)
}

// GetAlertPolicy returns a policy by name, or a 404 APIError.
func (c *Compute) GetAlertPolicy(name string) (AlertPolicy, error) {
	defer c.lock()()
	if err := c.record("GET", name, nil); err != nil {
		return AlertPolicy{}, err
	}
	return load[AlertPolicy](c, "alertPolicy", name)
}

// PatchAlertPolicy replaces a policy's fields in place; its name stays.
func (c *Compute) PatchAlertPolicy(name string, policy map[string]any) (AlertPolicy, error) {
	defer c.lock()()
	if err := c.record("PATCH", name, policy); err != nil {
		return AlertPolicy{}, err
	}
	a, err := load[AlertPolicy](c, "alertPolicy", name)
	if err != nil {
		return AlertPolicy{}, err
	}
	if err := c.checkPolicy(policy); err != nil {
		return AlertPolicy{}, err
	}
	a.Policy = policy
	return a, c.store(name, a)
}

// DeleteAlertPolicy deletes a policy.
func (c *Compute) DeleteAlertPolicy(name string) error {
	defer c.lock()()
	if err := c.record("DELETE", name, nil); err != nil {
		return err
	}
	if !c.exists(name) {
		return notFound("alertPolicy", name)
	}
	return os.Remove(c.file(name))
}
