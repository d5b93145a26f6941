package httpbridge

import "github.com/labstack/echo/v4"

// MountAppservice serves the appservice API the homeserver pushes events
// to: /_matrix/app/v1/… and the legacy PUT /transactions/{txnId} (see
// Engine.Appservice).
func (b *Bridge) MountAppservice(e *echo.Echo) {
	h := echo.WrapHandler(b.eng.Appservice())
	e.Any("/_matrix/app/*", h)
	e.PUT("/transactions/:txn", h)
}
