"""REST resources of the organisation tree, units, members and the data dictionary."""
from app.models.org import Dictionary, Member, Organization, Unit
from app.views.base import EntityApi


class OrganizationApi(EntityApi):
    model = Organization
    show_columns = ["id", "name", "type", "code", "parent_id", "path", "depth",
                    "secretary", "phone_shown", "address", "grid_kind", "active"]
    # Lists mask the directory's phones for everyone; a node's own read may show them.
    list_columns = [c if c != "phone_shown" else "phone_masked" for c in show_columns]
    order_columns = ["name", "code", "type", "path"]


class DictionaryApi(EntityApi):
    model = Dictionary
    list_columns = show_columns = ["id", "kind", "code", "label", "need_categories", "order",
                                   "active"]


class UnitApi(EntityApi):
    model = Unit
    show_columns = [
        "id", "name", "credit_code", "category_id", "community_id", "address", "party_org_name",
        "party_org_type", "party_member_count", "leader_name", "leader_title", "liaison_name",
        "contact_phone_shown", "status", "cancel_reason", "cancelled_on"]
    list_columns = [c if c != "contact_phone_shown" else "contact_phone_masked"
                    for c in show_columns]


class MemberApi(EntityApi):
    model = Member
    list_columns = [
        "id", "name", "gender", "id_number_masked", "phone_masked", "community_id", "group_id",
        "work_unit_id", "category", "status"]
    show_columns = [
        "id", "name", "gender", "id_number_shown", "phone_shown", "community_id", "group_id",
        "work_unit_id", "category", "skills", "is_household_center", "is_red_grid_worker",
        "status"]
    add_columns = edit_columns = [
        "name", "gender", "phone", "community", "group", "work_unit", "category",
        "skills", "is_household_center", "is_red_grid_worker", "status"]
    # 身份证号 is written in clear and stored encrypted; it is read back as id_number_shown.
    write_only_fields = ("id_number",)
