from django.urls import path

from audit.consumers import DecisionFeedConsumer

websocket_urlpatterns = [path("ws/audit/decisions/", DecisionFeedConsumer.as_asgi())]
