"""What the resident tests share: a need filed on the public intake page moved through the
loop by the community (accept, dispatch to danwei01's unit) and the unit (take, complete)."""
from sqlalchemy import text


def move_through_the_loop(app, code: str, result: str) -> None:
    from app.extensions import db
    from app.models.lists import Need
    from app.security.principal import SYSTEM, Principal, acting_as
    from app.services.lists import NEED_FLOW

    with app.app_context():
        user, unit = db.session.execute(text(
            "SELECT id, unit_id FROM ab_user WHERE username = 'danwei01'")).one()
    liaison = Principal(user_id=user, role_names=frozenset({"UnitLiaison"}), unit_ids=(unit,),
                        authenticated=True)
    with app.test_request_context():
        with acting_as(SYSTEM):
            need = db.session.execute(db.select(Need).where(Need.tracking_code == code)).scalar_one()
            NEED_FLOW.run(db.session, need, "accept")
            NEED_FLOW.run(db.session, need, "dispatch", {"assigned_unit": unit})
        with acting_as(liaison):
            NEED_FLOW.run(db.session, need, "take")
            NEED_FLOW.run(db.session, need, "complete", {"result": result})
        db.session.remove()
