"""REST resources of the three lists and micro-wishes, with their workflow moves."""
from app.models.lists import MicroWish, Need, NeedResource, Resource, ServiceItem
from app.services.lists import (
    MICRO_WISH_FLOW,
    NEED_FLOW,
    NEED_RESOURCE_FLOW,
    RESOURCE_FLOW,
    SERVICE_ITEM_FLOW,
)
from app.views.base import EntityApi

REVIEW = ["status", "reject_reason", "created_on", "changed_on"]


class ResourceApi(EntityApi):
    model = Resource
    workflow = RESOURCE_FLOW
    list_columns = show_columns = [
        "id", "unit_id", "year", "category_id", "title", "content", "quantity", "measure",
        "available_from", "available_to", "contact", "phone_shown", *REVIEW]


class ServiceItemApi(EntityApi):
    model = ServiceItem
    workflow = SERVICE_ITEM_FLOW
    list_columns = show_columns = [
        "id", "provider_unit_id", "year", "category_id", "title", "content", "capacity",
        "points", "start_date", "end_date", "place", "commitment", "fulfilment", *REVIEW]


class NeedApi(EntityApi):
    model = Need
    workflow = NEED_FLOW
    list_columns = [
        "id", "title", "community_id", "category_id", "urgency", "status", "assigned_unit_id",
        "deadline", "overdue", "overdue_step", "created_on"]
    show_columns = [
        "id", "source", "requester_name", "requester_phone_masked", "community_id", "grid_id",
        "category_id", "title", "content", "urgency", "status", "submitted_by_unit_id",
        "submitted_by_member_id", "reject_reason", "assigned_unit_id", "dispatch_note",
        "deadline", "overdue", "overdue_step", "plan", "plan_due", "decline_reason", "result",
        "accepted_on", "dispatched_on",
        "taken_on", "completed_on", "repeat_reports", "resident_satisfaction",
        "resident_comment", "resident_rated_on", "visitor", "visited_on", "satisfaction",
        "visit_comment", "created_on"]


class NeedResourceApi(EntityApi):
    model = NeedResource
    workflow = NEED_RESOURCE_FLOW
    list_columns = show_columns = ["id", "need_id", "resource_id", "note", "status", "answer",
                                   "answered_on", "created_on"]


class MicroWishApi(EntityApi):
    model = MicroWish
    workflow = MICRO_WISH_FLOW
    list_columns = show_columns = [
        "id", "resident_name_masked", "community_id", "grid_id", "content", "status",
        "reject_reason", "claimant_member_id", "claimant_unit_id", "claimed_on",
        "fulfilled_on", "proof", "feedback", "confirmed_on", "created_on"]
