"""The browser side of sign-in: /authorize, the login form, browser sessions (SSO) and
RP-initiated logout. The pages that render them are tokensrv/server/web/."""
