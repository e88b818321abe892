"""The OAuth2 validator of the test server: DOT's own, with the user's name and email
as ID token and UserInfo claims (DOT's documented way to add claims)."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    oidc_claim_scope = OAuth2Validator.oidc_claim_scope

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "name": user.get_full_name(),
            "preferred_username": user.username,
        }
