"""/api/v1/devices: register an elder's device (admin) and read devices (admin, supervisor, agent)."""

from __future__ import annotations

from callcenter.api.context import DATABASE
from callcenter.api.registry import ApiRequest, ApiRoutes
from callcenter.devices.schemas import (
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    DevicePage,
    DeviceQuery,
    MqttPasswordIssued,
    SipPasswordChange,
    SipPasswordChanged,
)
from callcenter.devices.services import (
    MQTT_ACCOUNTS,
    PROVISIONER,
    apply_provisioning,
    create_device,
    generate_sip_password,
    get_device,
    issue_mqtt_password,
    list_devices,
    set_sip_password,
)
from callcenter.users.models import Role

routes = ApiRoutes("devices")
READERS = (Role.SUPERVISOR, Role.AGENT)


def _password(given: str | None) -> tuple[str, str | None]:
    """The password to use, and the same again when the platform generated it (to be shown once)."""
    if given is not None:
        return given, None
    generated = generate_sip_password()
    return generated, generated


@routes.route("POST", "/devices", summary="Register a device and provision it in Asterisk", body=DeviceCreate,
              response=DeviceCreated, status=201, roles=(), errors=(409,))
async def create(request: ApiRequest) -> DeviceCreated:
    """The device can register within seconds, without an Asterisk restart. If Asterisk cannot be reached the
    device is kept and ``provisioning`` is ``pending``. Without ``sip_password`` the platform generates one and
    answers it once, as ``generated_sip_password``. On the platform-managed MQTT broker the device gets an account
    (``mqtt_username``, ``generated_mqtt_password``, shown once); a device whose account could not be written is kept
    (``mqtt_credentials``: ``failed``)."""
    body: DeviceCreate = request.body
    password, generated = _password(body.sip_password)
    async with request.require(DATABASE).transaction() as session:
        device = await create_device(
            session, elder_id=body.elder_id, kind=body.kind, sip_username=body.sip_username, sip_password=password,
            password_generated=generated is not None, phone=body.phone, serial_number=body.serial_number,
            actor=request.actor,
        )
        mqtt = await issue_mqtt_password(session, request.require(MQTT_ACCOUNTS), device.id, actor=request.actor,
                                         required=False)
        out = DeviceOut.model_validate(device)
    # After the commit: the provisioner renders from the database, so it must see the new row.
    provisioning = await apply_provisioning(request.require(PROVISIONER), reason="device.create",
                                            target=device.sip_username)
    return DeviceCreated(**out.model_dump(), generated_sip_password=generated, provisioning=provisioning.value,
                         mqtt_credentials=mqtt.outcome.value, mqtt_username=mqtt.username,
                         generated_mqtt_password=mqtt.password)


@routes.route("POST", "/devices/{id}/sip-password", summary="Give a device a new SIP password",
              body=SipPasswordChange, response=SipPasswordChanged, roles=(),
              description="Rotation or a reset device: generated unless given (at least 16 characters); the old "
                          "password stops working once Asterisk is reloaded, at once unless provisioning is pending.")
async def change_sip_password(request: ApiRequest) -> SipPasswordChanged:
    body: SipPasswordChange = request.body
    password, generated = _password(body.sip_password)
    async with request.require(DATABASE).transaction() as session:
        device = await set_sip_password(session, request.params["id"], password,
                                        password_generated=generated is not None, actor=request.actor)
        device_id, sip_username = device.id, device.sip_username
    provisioning = await apply_provisioning(request.require(PROVISIONER), reason="device.sip_password",
                                            target=sip_username)
    return SipPasswordChanged(id=device_id, sip_username=sip_username, generated_sip_password=generated,
                              provisioning=provisioning.value)


@routes.route("POST", "/devices/{id}/mqtt-password", summary="Give a device a new MQTT password",
              response=MqttPasswordIssued, roles=(), errors=(409, 503),
              description="On the platform-managed MQTT broker: a new generated password (rotation, a reset device, "
                          "or a device registered while MQTT was off), shown once; the broker refuses the old one at "
                          "once. 409 mqtt_not_managed when the broker is another's or MQTT is off.")
async def change_mqtt_password(request: ApiRequest) -> MqttPasswordIssued:
    async with request.require(DATABASE).transaction() as session:
        device = await get_device(session, request.params["id"])
        mqtt = await issue_mqtt_password(session, request.require(MQTT_ACCOUNTS), device.id, actor=request.actor,
                                         required=True)
    assert mqtt.username is not None and mqtt.password is not None  # required: issued, or raised
    return MqttPasswordIssued(id=device.id, mqtt_username=mqtt.username, generated_mqtt_password=mqtt.password)


@routes.route("GET", "/devices", summary="List devices, optionally of one elder", query=DeviceQuery,
              response=DevicePage, roles=READERS)
async def index(request: ApiRequest) -> DevicePage:
    query: DeviceQuery = request.query
    async with request.require(DATABASE).transaction() as session:
        found = await list_devices(session, elder_id=query.elder_id, limit=query.limit,
                                   offset=query.offset)
        return DevicePage.of(found, query)


@routes.route("GET", "/devices/{id}", summary="Read a device", response=DeviceOut, roles=READERS)
async def show(request: ApiRequest) -> DeviceOut:
    async with request.require(DATABASE).transaction() as session:
        return DeviceOut.model_validate(await get_device(session, request.params["id"]))
