package explain

import "context"

// Service is the serving process's hook for the admin clicks endpoint
// (queryapi.Clicks): explainers over its store.
type Service struct {
	Store   Store
	TooLate TooLateSource // StoreTooLate(Store); nil: none recorded (see TooLateSource)
}

// Explainer starts an explanation of one ad's count (or filtered count)
// over [from, to).
func (s Service) Explainer(ctx context.Context, adID, filterID string, from, to int64) (*Explainer, error) {
	return New(ctx, Options{Store: s.Store, AdID: adID, FilterID: filterID, From: from, To: to, TooLate: s.TooLate})
}
