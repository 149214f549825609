"""StoreLink's API: a table of contents. Code lives in chalicelib/."""
from chalice import Chalice, Cron, Rate

from chalicelib.api import callbacks, locations, oa_callbacks, orders, promoters, scans, sessions, stores
from chalicelib.api.admin import alerts as admin_alerts
from chalicelib.api.admin import catalogue as admin_catalogue
from chalicelib.api.admin import commission_config as admin_commission_config
from chalicelib.api.admin import customers as admin_customers
from chalicelib.api.admin import funnel as admin_funnel
from chalicelib.api.admin import network as admin_network
from chalicelib.api.admin import orders as admin_orders
from chalicelib.api.admin import promoters as admin_promoters
from chalicelib.api.admin import reconciliation as admin_reconciliation
from chalicelib.api.admin import refunds as admin_refunds
from chalicelib.api.admin import routing as admin_routing
from chalicelib.api.admin import scenes as admin_scenes
from chalicelib.api.admin import statements as admin_statements
from chalicelib.api.admin import unit_codes as admin_unit_codes
from chalicelib.api.middleware import errors_and_access_log

app = Chalice(app_name="storelink")
app.register_middleware(errors_and_access_log, "http")

app.register_blueprint(sessions.bp, url_prefix="/v1")
app.register_blueprint(locations.bp, url_prefix="/v1")
app.register_blueprint(callbacks.bp, url_prefix="/v1")
app.register_blueprint(oa_callbacks.bp, url_prefix="/v1")
app.register_blueprint(orders.bp, url_prefix="/v1")
app.register_blueprint(stores.bp, url_prefix="/v1")
app.register_blueprint(scans.bp, url_prefix="/v1")
app.register_blueprint(promoters.bp, url_prefix="/v1")
app.register_blueprint(admin_network.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_alerts.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_catalogue.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_orders.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_refunds.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_customers.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_scenes.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_unit_codes.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_promoters.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_funnel.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_commission_config.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_statements.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_reconciliation.bp, url_prefix="/v1/admin")
app.register_blueprint(admin_routing.bp, url_prefix="/v1/admin")
# Mini-program and printable QR codes answer image/png (Accept: image/png).
app.api.binary_types = sorted({*app.api.binary_types, "image/png"})


# The outbox stream's consumer; its event-source mapping lives in infra/aws
# (Chalice's @app.on_dynamodb_record would need the stream ARN at import time).
@app.lambda_function(name="outbox_consumer")
def outbox_consumer(event, context):
    from chalicelib.jobs.outbox import consume

    return consume(event)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="close-expired-orders")
def close_expired_orders(event):
    from chalicelib.jobs import close_expired_orders as job

    return job.run()


@app.schedule(Rate(5, unit=Rate.MINUTES), name="settle-splits")
def settle_splits(event):
    from chalicelib.jobs import settle_splits as job

    return job.run()


@app.schedule(Rate(15, unit=Rate.MINUTES), name="route-traffic")
def route_traffic(event):
    from chalicelib.jobs import route_traffic as job

    return job.run(event.context)


@app.schedule(Rate(15, unit=Rate.MINUTES), name="earn-commissions")
def earn_commissions(event):
    from chalicelib.services import wiring
    from chalicelib.services.splits import earn_due_commissions

    return earn_due_commissions(splits=wiring.splits(), now=wiring.now(), alerts=wiring.alerts(),
                                network=wiring.network(), orders=wiring.orders())


# Daily at 02:30 Beijing (18:30 UTC the day before): the previous Beijing day's ledgers.
@app.schedule(Cron(30, 18, "*", "*", "?", "*"), name="check-ledgers")
def check_ledgers(event):
    from chalicelib.jobs import check_ledgers as job

    return job.run((event.detail or {}).get("date"))


# Daily at 10:30 Beijing (02:30 UTC): the previous Beijing day against WeChat Pay's bills,
# which exist from 10:00 (``--date`` by hand).
@app.schedule(Cron(30, 2, "*", "*", "?", "*"), name="reconcile")
def reconcile(event):
    from chalicelib.jobs import reconcile as job

    return job.run((event.detail or {}).get("date"))
