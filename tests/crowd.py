"""A street with more communities than a chart shows bars (the dashboard's MAX_BARS): what the
district- and city-size tests share. The test seed has two streets of two communities; a real
district's street has a dozen, a city's hundreds."""
import uuid

from sqlalchemy import text

# Communities added under jiedao01's street, community i with i % 4 + 1 needs filed now.
EXTRA = 24


def crowd_street(app) -> dict:
    """Add EXTRA communities, each with a few needs, under jiedao01's street (as the system);
    returns {"street": id, "communities": [ids], "needs": {community id: count}}. The caller
    puts the tables back (tests.conftest.tables_kept_by)."""
    from app.extensions import db
    from app.models.lists import Need
    from app.models.org import Dictionary, Organization

    with app.app_context():
        session = db.session
        street_id = session.execute(text(
            "SELECT org_id FROM ab_user WHERE username = 'jiedao01'")).scalar()
        street = session.get(Organization, street_id)
        category = session.get(Dictionary, session.execute(text(
            "SELECT id FROM dictionary WHERE kind = 'need_category' ORDER BY id")).scalar())
        tag = uuid.uuid4().hex[:5]
        made = {"street": street_id, "communities": [], "needs": {}}
        for i in range(EXTRA):
            community = Organization(parent=street, type="community", code=f"CR{tag}{i:02d}",
                                     name=f"拥挤{i:02d}社区党委", short_name=f"拥挤{i:02d}社区")
            session.add(community)
            session.flush()
            needs = i % 4 + 1
            session.add_all([Need(community=community, category=category, requester_name="居民",
                                  title=f"拥挤社区的需求{i}-{n}") for n in range(needs)])
            made["communities"].append(community.id)
            made["needs"][community.id] = needs
        session.commit()
        db.session.remove()
    return made
