from django.urls import path

from cockpit.consumers import CockpitConsumer

websocket_urlpatterns = [path("ws/cockpit/", CockpitConsumer.as_asgi())]
