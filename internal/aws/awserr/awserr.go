// Package awserr maps AWS SDK errors to the infrastructure reasons of the
// failure model (throttling, timeouts, unavailable service, access denied),
// so that every AWS adapter reports the same reason for the same trouble and
// the retry and triage policies can act on it.
package awserr

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/catalog-import/catalog-import/internal/failure"
)

// Code returns the AWS error code of err ("ConditionalCheckFailedException",
// "PreconditionFailed", ...), or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Status returns the HTTP status of the response that failed, or 0.
func Status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Reason classifies an SDK error.
func Reason(err error) failure.Reason {
	if err == nil {
		return ""
	}
	if r := failure.ReasonOf(err); r != "" && r != failure.Internal {
		return r
	}
	code := Code(err)
	switch code {
	case "ThrottlingException", "Throttling", "ProvisionedThroughputExceededException",
		"RequestLimitExceeded", "SlowDown", "TooManyRequestsException", "RequestThrottled",
		"TransactionInProgressException":
		return failure.Throttled
	case "AccessDenied", "AccessDeniedException", "UnrecognizedClientException",
		"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
		"KMS.AccessDeniedException", "AuthorizationError":
		return failure.AccessDenied
	case "RequestTimeout", "RequestTimeoutException":
		return failure.NetworkTimeout
	case "ServiceUnavailable", "InternalError", "InternalServerError", "InternalFailure", "ServiceUnavailableException":
		return failure.ServiceUnavailable
	}
	if retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		return failure.Throttled
	}
	switch s := Status(err); {
	case s == http.StatusTooManyRequests:
		return failure.Throttled
	case s == http.StatusForbidden:
		return failure.AccessDenied
	case s >= 500:
		return failure.ServiceUnavailable
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return failure.NetworkTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return failure.ServiceUnavailable
	}
	return failure.Internal
}

// Wrap returns err as an ImportError with its classified reason and the
// message "op: cause", unless err already is one.
func Wrap(err error, op string) error {
	if err == nil {
		return nil
	}
	if _, ok := failure.As(err); ok {
		return err
	}
	return failure.Wrap(Reason(err), "", err, op+": "+err.Error())
}
