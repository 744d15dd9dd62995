<?php
$string['pluginname'] = 'Hello';
