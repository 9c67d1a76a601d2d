"""Health records under a pet: a second domain plugin, mounted only when the profile lists it."""

from server.plugins import Plugin, Route
from server.plugins.records.export import export_records
from server.plugins.records.handlers import RecordHandler, RecordsHandler

PLUGIN = Plugin(
    name="records",
    routes=[
        Route("/v1/pets/{pet_id}/records", RecordsHandler),
        Route("/v1/pets/{pet_id}/records/{record_id}", RecordHandler),
    ],
    requires=("pets",),  # a record belongs to a pet, and its routes use the pets scopes
    export=export_records,
    export_sections=("records",),
)
