"""REST resources of the three lists and micro-wishes, with their workflow moves."""
from app.models.lists import MicroWish, Need, Resource, ServiceItem
from app.services.lists import MICRO_WISH_FLOW, NEED_FLOW, RESOURCE_FLOW, SERVICE_ITEM_FLOW
from app.views.base import EntityApi

REVIEW = ["status", "reject_reason", "created_on", "changed_on"]


class ResourceApi(EntityApi):
    model = Resource
    workflow = RESOURCE_FLOW
    list_columns = show_columns = [
        "id", "unit_id", "year", "category_id", "title", "content", "quantity", "measure",
        "available_from", "available_to", "contact", "phone_shown", *REVIEW]
    add_columns = edit_columns = [
        "unit", "year", "category", "title", "content", "quantity", "measure",
        "available_from", "available_to", "contact", "phone"]
    search_columns = ["title", "unit", "category", "year", "status"]


class ServiceItemApi(EntityApi):
    model = ServiceItem
    workflow = SERVICE_ITEM_FLOW
    list_columns = show_columns = [
        "id", "provider_unit_id", "year", "category_id", "title", "content", "capacity",
        "points", "start_date", "end_date", "place", "commitment", "fulfilment", *REVIEW]
    add_columns = edit_columns = [
        "provider_unit", "year", "category", "title", "content", "capacity", "points",
        "start_date", "end_date", "place", "commitment"]
    search_columns = ["title", "provider_unit", "category", "year", "status"]


class NeedApi(EntityApi):
    model = Need
    workflow = NEED_FLOW
    list_columns = [
        "id", "title", "community_id", "category_id", "urgency", "status", "assigned_unit_id",
        "deadline", "overdue", "created_on"]
    show_columns = [
        "id", "source", "requester_name", "requester_phone_masked", "community_id", "grid_id",
        "category_id", "title", "content", "urgency", "status", "submitted_by_unit_id",
        "submitted_by_member_id", "reject_reason", "assigned_unit_id", "dispatch_note",
        "deadline", "overdue", "decline_reason", "result", "accepted_on", "dispatched_on",
        "taken_on", "completed_on", "visitor", "visited_on", "satisfaction", "visit_comment",
        "created_on"]
    add_columns = ["source", "requester_name", "requester_phone", "community", "grid",
                   "category", "title", "content", "urgency"]
    edit_columns = ["requester_name", "requester_phone", "grid", "category", "title",
                    "content", "urgency"]
    search_columns = ["title", "community", "category", "urgency", "status", "assigned_unit"]


class MicroWishApi(EntityApi):
    model = MicroWish
    workflow = MICRO_WISH_FLOW
    list_columns = show_columns = [
        "id", "resident_name_masked", "community_id", "grid_id", "content", "status",
        "reject_reason", "claimant_member_id", "claimant_unit_id", "claimed_on",
        "fulfilled_on", "proof", "feedback", "confirmed_on", "created_on"]
    add_columns = ["resident_name", "resident_phone", "community", "grid", "content"]
    edit_columns = ["resident_name", "resident_phone", "grid", "content"]
    search_columns = ["content", "community", "status"]
