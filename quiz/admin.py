from django.contrib import admin, messages

from quiz.models import Game, GameRound
from quiz.pool import pool_read
from quiz.selectors import quiz_settings


class GameRoundInline(admin.TabularInline):
    model = GameRound
    fields = ["position", "tile", "source", "answer", "confidence", "correct", "answered_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


@admin.register(Game)
class GameAdmin(admin.ModelAdmin):
    list_display = ["pk", "nickname", "n", "score", "created", "completed", "expires"]
    list_filter = ["completed", "n"]
    search_fields = ["nickname"]
    # Games are records of what players answered: they are read here, never edited.
    readonly_fields = ["token", "share_token", "nickname", "session_key", "seed", "n", "created", "expires",
                       "completed", "score"]
    inlines = [GameRoundInline]

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        # Staff must hear when play has stopped for want of real tiles, not find out from players.
        status = pool_read().status(n=quiz_settings().rounds)
        if not status.ready:
            level = messages.WARNING if status.real_pool_dry else messages.INFO
            messages.add_message(request, level, status.shortfall_message())
        return super().changelist_view(request, extra_context)

    def has_change_permission(self, request, obj=None):
        return False
