"""/api/v1/auth/login and /api/v1/users: log in; staff accounts (create: admin; list: admin, supervisor)."""

from __future__ import annotations

from callcenter.api.context import DATABASE, PROVISIONER, TOKENS
from callcenter.api.errors import Forbidden, Locked, Unauthorized
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.db.base import utcnow
from callcenter.devices.services import Provisioning, apply_provisioning
from callcenter.users.models import Role
from callcenter.users.schemas import LoginRequest, LoginResponse, UserCreate, UserCreated, UserOut, UserPage, UserQuery
from callcenter.users.services import LoginOutcome, authenticate, create_user, get_user, list_users

routes = ApiRoutes("users")
_MAY_READ_OTHERS = frozenset({Role.ADMIN, Role.SUPERVISOR})


@routes.route("POST", "/auth/login", summary="Log in and get a bearer token", body=LoginRequest,
              response=LoginResponse, roles=None, errors=(401, 423))
async def login(request: ApiRequest) -> LoginResponse:
    """Five wrong passwords in a row lock the account for 15 minutes (423). Every attempt is audited."""
    body: LoginRequest = request.body
    now = utcnow()
    response = None
    async with request.require(DATABASE).transaction() as session:
        result = await authenticate(session, body.username, body.password, source_ip=request.source_ip, now=now)
        if result.outcome is LoginOutcome.OK and result.user is not None:
            token, expires_at = request.require(TOKENS).issue(result.user.id, result.user.role, now)
            response = LoginResponse(token=token, expires_at=expires_at, user=UserOut.model_validate(result.user))
    # The failure count and the audit entry are committed above; only now is the request refused.
    if result.outcome is LoginOutcome.LOCKED and result.locked_until is not None:
        raise Locked(f"too many failed logins: the account is locked until {result.locked_until.isoformat()}")
    if result.outcome is LoginOutcome.INACTIVE:
        raise Unauthorized("this account is disabled", code="account_inactive")
    if response is None:
        raise Unauthorized("wrong username or password", code="bad_credentials")
    return response


@routes.route("POST", "/users", summary="Create a staff account (and its phone extension)", body=UserCreate,
              response=UserCreated, status=201, roles=(), errors=(409,))
async def create(request: ApiRequest) -> UserCreated:
    """With an extension, the phone is provisioned in Asterisk at once; if that fails the account is kept and
    ``provisioning`` is ``pending``."""
    body: UserCreate = request.body
    async with request.require(DATABASE).transaction() as session:
        user = await create_user(
            session, username=body.username, password=body.password, role=body.role, display_name=body.display_name,
            extension=body.extension, sip_password=body.sip_password, actor=request.actor,
        )
        out = UserOut.model_validate(user)
    provisioning = Provisioning.NOT_NEEDED
    if user.extension is not None:
        provisioning = await apply_provisioning(request.require(PROVISIONER), reason="user.create",
                                                target=user.extension)
    return UserCreated(**out.model_dump(), provisioning=provisioning.value)


@routes.route("GET", "/users", summary="List staff accounts", query=UserQuery, response=UserPage,
              roles=(Role.SUPERVISOR,))
async def index(request: ApiRequest) -> UserPage:
    query: UserQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await list_users(session, role=query.role, limit=query.limit, offset=query.offset)
        return UserPage.of(found, query)


@routes.route("GET", "/users/{username}", summary="Read a staff account", response=UserOut,
              roles=(Role.SUPERVISOR, Role.AGENT, Role.AUDITOR))
async def show(request: ApiRequest) -> UserOut:
    """Admins and supervisors read any account; agents and auditors only their own."""
    username = request.params["username"]
    if request.user.role not in _MAY_READ_OTHERS and username != request.user.username:
        raise Forbidden("you may read only your own account")
    async with request.require(DATABASE).transaction() as session:
        return UserOut.model_validate(await get_user(session, username))
